"""docs/api.md's curl examples, run as written against a real server.

Every ```sh block of docs/api.md that documents a status (``# → 200 {...}``) is
run with bash and the real ``curl`` against a fresh server on 127.0.0.1 (open
mode when the block starts with ``# open mode``), set up as the page says: alice
and bob registered (``$TOKEN``, ``$BOB``) and one message from bob to alice.
Each curl's status must be the one written after it, its reply JSON, and the
keys the page shows must be in the reply. Every route must have an example.
The SSH door's examples get what a door would have: ``$DOOR_SECRET``, a new key
``$KEY`` (``$FINGERPRINT``) with a ticket for it (``$TICKET``), and a link code
made by alice (``$CODE``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import asyncssh
import pytest

from backend.http.auth import DOOR_HEADER as HEADER
from tests.support import REPO, LiveServer, bearer, http, register

PAGE = (REPO / "docs" / "api.md").read_text()
BLOCKS = [block for block in re.findall(r"```sh\n(.*?)```", PAGE, re.S) if "# → " in block]
EXPECTED = re.compile(r"^# → (\d{3})(.*)$", re.M)
# Wraps curl: each call's body to $OUT/<n>.json and its status to $OUT/statuses.
WRAPPER = """
n=0
curl() {
    n=$((n+1))
    command curl -sS --max-time 30 -o "$OUT/$n.json" -w '%{http_code}\\n' "$@" >> "$OUT/statuses"
}
"""


def _keys(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {key for item in value.values() for key in _keys(item)}
    if isinstance(value, list):
        return {key for item in value for key in _keys(item)}
    return set()


Start = Callable[[bool], dict[str, str]]


@pytest.fixture
def example_server(
    live_server: Callable[..., LiveServer],
) -> Iterator[Callable[[bool], dict[str, str]]]:
    def start(open_mode: bool) -> dict[str, str]:
        server = live_server(open_mode=open_mode)
        alice, bob = register(server.url, "alice"), register(server.url, "bob")
        sent = http.post(
            f"{server.url}/send_message/alice",
            data={"author": "bob", "message": "hi alice"},
            headers=bearer(bob),
        )
        assert sent.status_code == 200
        key = asyncssh.generate_private_key("ssh-ed25519", comment="me@laptop")
        line = key.export_public_key().decode("ascii").strip()
        assert server.services is not None
        door = server.services.ssh_identity
        secret = door.secret()
        ticket = http.post(
            f"{server.url}/door/session", data={"public_key": line}, headers={HEADER: secret}
        ).json()["ticket"]
        code = http.post(f"{server.url}/keys/link_code", headers=bearer(alice)).json()["code"]
        return {
            "URL": server.url,
            "TOKEN": alice,
            "BOB": bob,
            "DOOR_SECRET": secret,
            "KEY": line,
            "FINGERPRINT": key.get_fingerprint("sha256"),
            "TICKET": ticket,
            "CODE": code,
        }

    yield start


@pytest.mark.parametrize("block", BLOCKS, ids=[f"example{n}" for n in range(len(BLOCKS))])
def test_the_documented_curl_example_answers_as_documented(
    block: str, example_server: Start, tmp_path: Path
) -> None:
    assert shutil.which("curl"), ".ci/run installs curl"
    env = {**os.environ, **example_server(block.startswith("# open mode")), "OUT": str(tmp_path)}
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", WRAPPER + block],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    statuses = (tmp_path / "statuses").read_text().split()
    expected = EXPECTED.findall(block)
    assert statuses == [status for status, _ in expected], block
    for number, (_, shown) in enumerate(expected, start=1):
        reply = json.loads((tmp_path / f"{number}.json").read_text())
        documented = set(re.findall(r'"([a-z_]+)":', shown))
        assert documented <= _keys(reply), (shown, reply)


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
    examples = "\n".join(BLOCKS)
    missing = [route for route in sorted(routes) if f"$URL{route}" not in examples]
    assert missing == [], f"docs/api.md has no curl example for {missing}"
