"""Packaging: what the wheel declares is what the code imports, and a plain install is small.

- Every third-party module that backend/, tui/ and doors/ import is a declared
  dependency or in an extra (not something that only comes along with another package).
- The wheel installed without extras into a fresh venv runs ``pairchat`` and
  ``pairchat-server`` and holds none of the extras' packages; asking it for a door or
  multi-node mode is one line that names the extra.
- Installed, the server's default data folder is the user data folder, not a
  ``conversations`` folder beside site-packages; the checkout keeps ``./conversations``.

The wheel is built and installed with uv (``.tools/bin/uv``, which ``./run`` provides)
from its cache; versions are the lock's (``uv export``), as tested.
"""

from __future__ import annotations

import ast
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support import REPO

PACKAGES = ("backend", "tui", "doors", "protocol")
# Modules that exist for the type checker only (typeshed's stubs), never at run time.
TYPING_ONLY = {"_typeshed"}
EXTRA_PACKAGES = ("psycopg", "redis", "litestream", "asyncssh", "textual_serve", "aiohttp_jinja2")


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_name(spec: str) -> str:
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", spec)
    assert match, spec
    return _normal(match.group(1))


def _project() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def _declared() -> dict[str, str]:
    """Distribution (normalised) -> where it is declared: "base" or the extra's name."""
    project = _project()
    where = {_requirement_name(spec): "base" for spec in project["dependencies"]}
    for extra, specs in project.get("optional-dependencies", {}).items():
        for spec in specs:
            where.setdefault(_requirement_name(spec), extra)
    return where


def _third_party_imports() -> dict[str, set[str]]:
    """Top-level module -> the files of backend/, tui/, doors/ that import it."""
    found: dict[str, set[str]] = {}
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    top = name.partition(".")[0]
                    if top in sys.stdlib_module_names or top in PACKAGES or top in TYPING_ONLY:
                        continue
                    found.setdefault(top, set()).add(str(path.relative_to(REPO)))
    return found


def _distributions_of(module: str) -> list[str]:
    return [_normal(d) for d in importlib.metadata.packages_distributions().get(module, [])]


def test_every_imported_module_is_a_declared_dependency() -> None:
    declared = _declared()
    undeclared = []
    for module, files in sorted(_third_party_imports().items()):
        distributions = _distributions_of(module)
        if not any(d in declared for d in distributions):
            undeclared.append(
                f"{module} ({', '.join(distributions) or 'not installed'}) in {sorted(files)}"
            )
    assert not undeclared, "imported but not declared in pyproject.toml:\n" + "\n".join(undeclared)


def test_the_extras_tables_name_the_extras_that_install_their_modules() -> None:
    """backend/core/extras.py and the doors' NEEDS say which extra to install: it must be true."""
    from backend.core import extras
    from doors.__main__ import NEEDS as DOOR_NEEDS

    declared = _declared()
    features = [extras.SSH_DOOR, extras.WEB_DOOR, extras.MULTI_NODE, extras.PLACEMENT]
    features += [extras.Feature(what, "doors", modules) for what, modules in DOOR_NEEDS.values()]
    for feature in features:
        for module in feature.modules:
            homes = {declared.get(d) for d in _distributions_of(module)}
            assert feature.extra in homes, (feature.name, module, homes)


def test_private_api_overrides_are_pinned_exactly() -> None:
    """doors/web.py overrides textual-serve's private methods; the snapshots need Textual's."""
    project = _project()
    specs = project["dependencies"] + [
        s for v in project["optional-dependencies"].values() for s in v
    ]
    pinned = {_requirement_name(s): s for s in specs if "==" in s}
    assert {"textual", "textual-serve"} <= set(pinned), pinned


def test_the_checkout_keeps_its_conversations_folder() -> None:
    from backend.core.settings import default_data_dir, source_tree

    assert source_tree() == REPO
    assert default_data_dir() == REPO / "conversations"


# -- the wheel, installed without extras -------------------------------------------------
@dataclass
class Installed:
    venv: Path
    home: Path  # XDG_DATA_HOME of every run
    work: Path  # the runs' working folder (not the checkout: nothing imported from it)

    @property
    def bin(self) -> Path:
        return self.venv / "bin"

    def env(self) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("PAIRCHAT_", "PYTHON", "VIRTUAL_ENV", "UV_"))
        }
        env["XDG_DATA_HOME"] = str(self.home)
        env["PATH"] = f"{self.bin}{os.pathsep}{env.get('PATH', '')}"
        return env

    def run(self, *argv: str | Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(a) for a in argv],
            cwd=self.work,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=60,
        )

    def python(self, code: str) -> subprocess.CompletedProcess[str]:
        return self.run(self.bin / "python", "-c", code)


def _uv() -> str:
    for candidate in (REPO / ".tools" / "bin" / "uv", shutil.which("uv")):
        if candidate and Path(candidate).is_file():
            return str(candidate)
    pytest.fail("no uv: ./run puts it in .tools/bin")


def _uv_run(*args: str | Path, cwd: Path) -> None:
    """``uv ARGS``, from the cache if it has everything, else from the registry."""
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    env["UV_PYTHON_DOWNLOADS"] = "never"
    argv = [_uv(), *map(str, args)]
    done = subprocess.run([*argv, "--offline"], cwd=cwd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True)
    assert done.returncode == 0, f"{' '.join(argv)}:\n{done.stdout}\n{done.stderr}"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    root = tmp_path_factory.mktemp("packaging")
    dist, venv, work, home = root / "dist", root / "venv", root / "work", root / "data-home"
    work.mkdir()
    _uv_run("build", "--wheel", "--quiet", "--out-dir", dist, cwd=REPO)
    (wheel,) = dist.glob("pairchat-*.whl")
    # The versions tested: the lock's, for the dependencies without extras.
    constraints = root / "constraints.txt"
    _uv_run(
        "export",
        "--frozen",
        "--no-dev",
        "--no-emit-project",
        "--no-hashes",
        "--quiet",
        "--output-file",
        constraints,
        cwd=REPO,
    )
    # A fresh venv on this Python's base interpreter (not this project's venv).
    base = Path(sys._base_executable) if hasattr(sys, "_base_executable") else sys.executable
    _uv_run("venv", "--quiet", "--python", base, venv, cwd=work)
    _uv_run(
        "pip", "install", "--quiet", "--python", venv / "bin" / "python",
        "--constraints", constraints, wheel,
        cwd=work,
    )  # fmt: skip
    yield Installed(venv, home, work)


def test_a_plain_install_runs_both_programs_without_the_extras(installed: Installed) -> None:
    for program in ("pairchat", "pairchat-server"):
        done = installed.run(installed.bin / program, "--help")
        assert done.returncode == 0, done.stderr
        assert "usage" in done.stdout.lower()
    done = installed.python(
        "import importlib.util as u\n"
        f"print(' '.join(m for m in {EXTRA_PACKAGES!r} if u.find_spec(m)))\n"
        "import backend, tui\n"
        "print(backend.__file__)"
    )
    assert done.returncode == 0, done.stderr
    present, where = done.stdout.splitlines()
    assert present == "", f"a plain install has the extras' {present}"
    assert Path(where).is_relative_to(installed.venv), where  # the wheel's, not the checkout's


def test_every_module_without_an_extra_imports_in_a_plain_install(installed: Installed) -> None:
    """What the wheel declares is enough for every module but those that use an extra."""
    done = installed.python(
        "import importlib, pkgutil\n"
        "for name in ('backend', 'tui', 'doors'):\n"
        "    package = importlib.import_module(name)\n"
        "    for info in pkgutil.walk_packages(package.__path__, name + '.'):\n"
        "        try:\n"
        "            importlib.import_module(info.name)\n"
        "        except ModuleNotFoundError as exc:\n"
        "            print(info.name, exc.name)\n"
    )
    assert done.returncode == 0, done.stderr
    failed = dict(line.split() for line in done.stdout.splitlines())
    missing = {module.partition(".")[0] for module in failed.values()}
    assert missing <= set(EXTRA_PACKAGES) | {"aiohttp"}, failed
    extra_users = {name.partition(".")[0] for name in failed}
    assert "tui" not in extra_users, failed


def test_an_installed_server_keeps_its_data_in_the_user_data_folder(
    installed: Installed,
) -> None:
    done = installed.python(
        "from backend.core.settings import Settings; print(Settings().data_dir)"
    )
    assert done.returncode == 0, done.stderr
    data_dir = Path(done.stdout.strip())
    assert data_dir == installed.home / "pairchat" / "conversations"
    assert not data_dir.is_relative_to(installed.venv)


SERVE = "pairchat-server serve --port 0"
CLUSTER = "--node n1 --database-url postgresql://127.0.0.1:1/x --redis-url redis://127.0.0.1:1"


@pytest.mark.parametrize(
    ("command", "extra"),
    [
        (f"{SERVE} --ssh-port 2299", "doors"),
        (f"{SERVE} --web-port 8099", "doors"),
        (f"{SERVE} {CLUSTER}", "cluster"),
        ("pairchat-server placement fence n1 --database-url postgresql://127.0.0.1:1/x", "cluster"),
        ("python -m doors ssh --data-dir door", "doors"),
        ("python -m doors web --data-dir door", "doors"),
    ],
)
def test_a_feature_without_its_extra_is_one_line_naming_it(
    installed: Installed, command: str, extra: str
) -> None:
    program, *args = command.split()
    done = installed.run(installed.bin / program, *args)
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert f"needs the {extra} extra" in lines[0] and f"'pairchat[{extra}]'" in lines[0]
    assert not (installed.home / "pairchat").exists()  # refused before making anything
    assert not (installed.work / "door").exists()
