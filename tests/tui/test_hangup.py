"""A closed terminal ends the program even when no SIGHUP reaches it.

The kernel tells only the session leader of a hang-up. ``./run demo`` and ``./run
chat`` go through ``just``, which keeps SIGHUP to itself while a recipe runs; so in
``tmux new './run demo'`` (or ``ssh HOST ./run chat``) with the window closed, just
was the leader, the TUI was never told, its input thread spun on the dead terminal
and the demo's server stayed up - found by closing such a tmux window. Here the
leader is a stand-in that does what just does with SIGHUP (catches it, waits for its
child), and the tmux server is killed: the terminal is gone for good.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support import REPO, TEST_ENV, ServerProcess, alive, free_port, register, wait_healthy
from tests.test_operator_safety import _server_pids

from .conftest import api
from .test_tmux import PROGRAM, Tmux, client_command

LAUNCHER = (
    "import signal, subprocess, sys; "
    "signal.signal(signal.SIGHUP, lambda *_: None); "  # kept, as just keeps it
    "sys.exit(subprocess.call(sys.argv[1:]))"
)


def under_launcher(command: str) -> str:
    """``command`` run by a session leader that keeps SIGHUP to itself."""
    launcher = f"{shlex.quote(sys.executable)} -c {shlex.quote(LAUNCHER)}"
    return f"exec {launcher} sh -c {shlex.quote(command)}"


@pytest.fixture
def tmux(tmp_path: Path) -> Iterator[Tmux]:
    session = Tmux(f"pairchat-hangup-{os.getpid()}-{tmp_path.name}")
    yield session
    session.run("kill-server")


def gone(pids: list[int], what: str) -> None:
    deadline = time.monotonic() + 20
    try:
        while left := [pid for pid in pids if alive(pid)]:
            assert time.monotonic() < deadline, f"{what}: still running after 20 s: {left}"
            time.sleep(0.05)
    finally:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def test_the_client_ends_and_keeps_its_draft_when_its_terminal_closes_unannounced(
    server_process: Callable[..., ServerProcess], tmux: Tmux, tmp_path: Path
) -> None:
    proc = server_process()
    users = {name: register(proc.url, name) for name in ("alice", "bob")}
    with api(proc.url, "alice", users["alice"]) as alice:
        alice.add_friend("bob")
    config = tmp_path / "cfg"
    pid_file = tmp_path / "client.pid"
    tmux.start("closed", under_launcher(client_command(proc.url, config, pid_file)))
    tmux.wait_for("connected", name="closed")
    tmux.wait_for("@bob", name="closed")  # bob in the friend list
    tmux.keys("Enter", name="closed")  # his chat
    tmux.wait_for("Message @bob", name="closed")
    tmux.keys("-l", "words not sent yet", name="closed")
    tmux.wait_for("words not sent yet", name="closed")
    client = int(pid_file.read_text())

    tmux.run("kill-server")  # the window closes; only the launcher hears of it
    gone([client], "the client ended after its terminal closed")

    drafts = config / "drafts-alice.json"
    assert "words not sent yet" in drafts.read_text(), "the draft was kept"
    assert PROGRAM.exists()


@pytest.mark.live  # the demo runs its own server
def test_the_demo_and_its_server_end_when_the_terminal_closes_unannounced(
    tmux: Tmux, tmp_path: Path
) -> None:
    port = free_port()
    data = tmp_path / "data"
    data.mkdir()
    variables = {"XDG_CACHE_HOME": str(tmp_path / "cache"), "TERM": "xterm-256color", **TEST_ENV}
    exports = " ".join(shlex.quote(f"{key}={value}") for key, value in variables.items())
    pid_file = tmp_path / "demo.pid"
    demo = f"{shlex.quote(sys.executable)} -m tui.demo --port {port} --data-dir {data}"
    command = f"cd {shlex.quote(str(REPO))} && echo $$ > {pid_file} && exec env {exports} {demo}"
    tmux.start("demo", under_launcher(command))
    server = _server_pids(data)
    wait_healthy(f"http://127.0.0.1:{port}", timeout=30)
    tmux.wait_for("alice", name="demo", timeout=30)
    demo_pid = int(pid_file.read_text())

    started = time.monotonic()
    tmux.run("kill-server")
    gone([demo_pid, *server], "the demo and its server ended after the terminal closed")
    assert time.monotonic() - started < 20
