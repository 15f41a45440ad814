"""Smoke test of the real ``pairchat`` program in tmux (80x24) against the real server.

tmux runs on its own socket, so the user's tmux sessions are never touched, and
only the tmux server this test started is killed.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support import ServerProcess, register

from .conftest import PASSWORD, api

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")


class Tmux:
    def __init__(self, socket: str) -> None:
        self.socket = socket

    def run(self, *args: str) -> str:
        done = subprocess.run(
            ["tmux", "-L", self.socket, *args], capture_output=True, text=True, check=False
        )
        return done.stdout

    def screen(self) -> str:
        return self.run("capture-pane", "-p", "-t", "smoke")

    def keys(self, *keys: str) -> None:
        self.run("send-keys", "-t", "smoke", *keys)

    def wait_for(self, text: str, timeout: float = 20.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            if text in screen:
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} never appeared; the screen was:\n{screen}")
            time.sleep(0.1)


@pytest.fixture
def tmux(tmp_path: Path) -> Iterator[Tmux]:
    session = Tmux(f"pairchat-test-{os.getpid()}-{tmp_path.name}")
    yield session
    session.run("kill-server")


def test_pairchat_in_tmux_at_80x24(
    server_process: Callable[..., ServerProcess], tmux: Tmux, tmp_path: Path
) -> None:
    proc = server_process()
    users = {name: register(proc.url, name) for name in ("alice", "bob")}
    with api(proc.url, "alice", users["alice"]) as alice:
        alice.add_friend("bob")
    with api(proc.url, "bob", users["bob"]) as bob:
        bob.send("alice", "hello from bob")
    program = Path(sys.executable).with_name("pairchat")
    assert program.exists(), "the console script is installed"
    env = {
        "PAIRCHAT_CONFIG_DIR": str(tmp_path / "cfg"),
        "PAIRCHAT_PASSWORD": PASSWORD,
        "TERM": "xterm-256color",
    }
    exports = " ".join(shlex.quote(f"{key}={value}") for key, value in env.items())
    command = f"env {exports} {shlex.quote(str(program))} --server {proc.url} --user alice"
    command += "; echo EXITED; sleep 30"
    tmux.run("new-session", "-d", "-s", "smoke", "-x", "80", "-y", "24", command)

    screen = tmux.wait_for("connected")
    assert "alice" in screen and "(1)" in screen, screen
    tmux.keys("Enter")  # open bob's chat
    screen = tmux.wait_for("hello from bob")
    tmux.keys("-l", "typed in tmux")
    tmux.keys("Enter")
    screen = tmux.wait_for("\u203a me")
    deadline = time.monotonic() + 20
    with api(proc.url, "bob", users["bob"]) as bob:
        while "typed in tmux" not in [m.text for m in bob.history("alice").messages]:
            assert time.monotonic() < deadline, "the message typed in tmux was not stored"
            time.sleep(0.1)
    lines = tmux.screen().splitlines()
    assert len(lines) == 24 and all(len(line) <= 80 for line in lines)
    assert "Quit" in lines[-1], "the footer shows key hints"
    tmux.keys("C-q")
    tmux.wait_for("EXITED")
