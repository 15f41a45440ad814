"""docs/api.md's curl examples, run top to bottom as one session against a real server.

The page reads as one session a newcomer can paste: its ``Set-up`` block registers
alice and bob (``$TOKEN``, ``$BOB``) and every later ```sh block goes on from
what the earlier ones did. This test runs exactly that: every ```sh block of the
page, in order, in ONE bash session with the real ``curl``, ``jq`` and
``ssh-keygen``, against ONE fresh server on 127.0.0.1 (only the ``URL=`` line of
the set-up is pointed at it; the data folder is ``conversations`` in the
session's working folder, with the ``door.secret`` the real program makes at
start). Blocks that start with ``# open mode`` are a second session of their own
against a second server, started with ``--open``.

A ``curl`` line (with its ``\\``-continued lines) followed by ``# → <status> <reply>``
is checked; any other line runs as written (``X=$(curl -s … | jq -r .token)``
set-up lines included). The shown reply may go on over lines that start with
``#   ``. For a checked call:

- its status must be the one shown;
- its reply must be the shown JSON *in full*: at every level the reply's keys are
  exactly the shown keys (no key left out, none added), lists have the shown
  length, and every literal value is equal;
- the wildcard rule: a value written ``…`` (bare or as the string ``"…"``) may be
  anything — used for what varies from run to run (tokens, times, token ids,
  cursors, link codes); inside a longer string ``…`` stands for any text
  (``"SHA256:…"``). Text after the JSON (``(after a second: nothing newer)``) is a
  comment.
- a part of a file (``Range:``) is shown as ``bytes FIRST-LAST/SIZE: TEXT``: its
  ``Content-Range`` must be ``bytes FIRST-LAST/SIZE`` and its body exactly ``TEXT``.

Every route must have an example.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support import REPO, LiveServer

PAGE = (REPO / "docs" / "api.md").read_text()
BLOCKS = re.findall(r"```sh\n(.*?)```", PAGE, re.S)
SESSION = [block for block in BLOCKS if not block.startswith("# open mode")]
OPEN_SESSION = [block for block in BLOCKS if block.startswith("# open mode")]
EXPECTED = re.compile(r"^# → (\d{3})(.*)$")
URL_LINE = "URL=http://127.0.0.1:5000"
WILD = "\x00any"
PART = re.compile(r"^bytes (\d+-\d+/\d+): (.*)$")
"""A part of a file as shown: its Content-Range, and the bytes sent as text."""
# A checked call: its body to $OUT/<n>.json, its headers to $OUT/<n>.headers, its status
# appended to $OUT/statuses.
PRELUDE = """
checked=0
checked_curl() {
    checked=$((checked+1))
    command curl -sS --max-time 30 -o "$OUT/$checked.json" -D "$OUT/$checked.headers" \\
        -w '%{http_code}\\n' "$@" >> "$OUT/statuses"
}
"""


@dataclass
class Example:
    command: str
    status: int
    shown: str


def _script(blocks: list[str]) -> tuple[str, list[Example]]:
    """The blocks as one bash script whose documented curls are checked, and those examples."""
    out: list[str] = []
    examples: list[Example] = []
    for block in blocks:
        lines = block.splitlines()
        i = 0
        while i < len(lines):
            assert not EXPECTED.match(lines[i]), f"a reply that follows no curl: {lines[i]!r}"
            end = i
            while lines[end].endswith("\\"):
                end += 1
            command = lines[i : end + 1]
            after = lines[end + 1] if end + 1 < len(lines) else ""
            expected = EXPECTED.match(after)
            if not (lines[i].startswith("curl ") and expected):
                out += command
                i = end + 1
                continue
            shown, nxt = expected.group(2), end + 2
            while nxt < len(lines) and lines[nxt].startswith("#   "):
                shown += " " + lines[nxt][4:].strip()
                nxt += 1
            examples.append(Example("\n".join(command), int(expected.group(1)), shown.strip()))
            out += ["checked_" + command[0], *command[1:]]
            i = nxt
    return PRELUDE + "\n".join(out) + "\n", examples


def _shown_value(shown: str) -> Any:
    """The shown reply as JSON, each bare ``…`` outside strings read as the wildcard."""
    text, in_string, escaped = [], False, False
    for char in shown:
        if in_string:
            in_string = not (char == '"' and not escaped)
            escaped = char == "\\" and not escaped
        elif char == '"':
            in_string = True
        elif char == "…":
            text.append(json.dumps(WILD))
            continue
        text.append(char)
    value, _ = json.JSONDecoder().raw_decode("".join(text))
    return value


def _differences(shown: Any, reply: Any, where: str = "reply") -> list[str]:
    if shown == WILD or shown == "…":
        return []
    if isinstance(shown, dict):
        if not isinstance(reply, dict):
            return [f"{where}: {reply!r} is not an object"]
        problems = []
        if set(shown) != set(reply):
            missing, extra = sorted(set(reply) - set(shown)), sorted(set(shown) - set(reply))
            problems.append(f"{where}: keys not shown {missing}, shown but not sent {extra}")
        for key in set(shown) & set(reply):
            problems += _differences(shown[key], reply[key], f"{where}.{key}")
        return problems
    if isinstance(shown, list):
        if not isinstance(reply, list) or len(reply) != len(shown):
            return [f"{where}: {reply!r} is not a list of {len(shown)}"]
        return [
            p
            for n, (s, r) in enumerate(zip(shown, reply, strict=True))
            for p in _differences(s, r, f"{where}[{n}]")
        ]
    if isinstance(shown, str) and "…" in shown and isinstance(reply, str):
        pattern = ".*".join(re.escape(part) for part in shown.split("…"))
        return (
            [] if re.fullmatch(pattern, reply, re.S) else [f"{where}: {reply!r} is not {shown!r}"]
        )
    if type(shown) is not type(reply) or shown != reply:
        return [f"{where}: {reply!r}, shown {shown!r}"]
    return []


def _part_differences(shown: re.Match[str], headers: str, body: str) -> list[str]:
    """A part of a file against its shown ``bytes FIRST-LAST/SIZE: TEXT``."""
    found = re.search(r"^content-range: *(.*?)\r?$", headers, re.I | re.M)
    sent_range = found.group(1) if found else None
    problems = []
    if sent_range != f"bytes {shown.group(1)}":
        problems.append(f"Content-Range {sent_range!r}, shown 'bytes {shown.group(1)}'")
    if body != shown.group(2):
        problems.append(f"body {body!r}, shown {shown.group(2)!r}")
    return problems


def _run(blocks: list[str], url: str, workdir: Path) -> None:
    script, examples = _script(blocks)
    out = workdir / "out"
    out.mkdir()
    assert script.count(URL_LINE) <= 1
    script = script.replace(URL_LINE, f"URL={url}")
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        env={**os.environ, "OUT": str(out), "URL": url},
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=300,
    )
    statuses = (out / "statuses").read_text().split() if (out / "statuses").exists() else []
    failures = []
    for number, (example, status) in enumerate(zip(examples, statuses, strict=False), start=1):
        body = (out / f"{number}.json").read_text()
        problems = [] if int(status) == example.status else [f"status {status}"]
        part = PART.match(example.shown)
        if part is None:
            problems += _differences(_shown_value(example.shown), json.loads(body))
        else:
            problems += _part_differences(part, (out / f"{number}.headers").read_text(), body)
        if problems:
            failures.append(
                f"{example.command}\nshown: {example.status} {example.shown}\n"
                f"sent:  {status} {body}\n" + "\n".join(problems)
            )
    assert not failures, "\n\n" + "\n\n".join(failures)
    assert done.returncode == 0, (
        f"the session stopped after {len(statuses)} checked calls:\n{done.stderr}"
    )
    assert len(statuses) == len(examples)


def test_the_page_runs_as_one_session(
    live_server: Callable[..., LiveServer], tmp_path: Path
) -> None:
    assert shutil.which("curl") and shutil.which("jq") and shutil.which("ssh-keygen")
    assert URL_LINE in SESSION[0], "the first block sets up the session"
    server = live_server(data_dir=tmp_path / "conversations")
    assert server.services is not None
    server.services.ssh_identity.secret()  # pairchat-server makes door.secret at start
    _run(SESSION, server.url, tmp_path)


def test_the_open_mode_examples_run_as_their_own_session(
    live_server: Callable[..., LiveServer], tmp_path: Path
) -> None:
    assert OPEN_SESSION, "docs/api.md shows the seed client in open mode"
    _run(OPEN_SESSION, live_server(open_mode=True).url, tmp_path)


def test_every_route_has_a_curl_example() -> None:
    from backend.core.settings import Settings
    from backend.server.app import create_app

    app = create_app(Settings(data_dir=REPO / "conversations", watch_interval=0))
    try:
        routes = {
            re.sub(r"<[^>]+>", "", rule.rule).rstrip("/") for rule in app.url_map.iter_rules()
        }
    finally:
        app.extensions["pairchat"].close()
    examples = "\n".join(block for block in BLOCKS if "# → " in block)
    missing = [route for route in sorted(routes) if f"$URL{route}" not in examples]
    assert missing == [], f"docs/api.md has no curl example for {missing}"
