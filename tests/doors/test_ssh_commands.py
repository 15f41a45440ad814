"""``ssh -p PORT HOST send|history|tail …``: the SSH door's script commands, with the real
OpenSSH client against the real door and API (docs/doors.md)."""

from __future__ import annotations

import queue
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.doors.conftest import DOOR_SECRET, Door, wait_until
from tests.support import ServerProcess, bearer, http, register

Ssh = Callable[..., subprocess.CompletedProcess[str]]


def ssh_command(door: Door, key: Path, *command: str) -> list[str]:
    ssh = ["ssh", "-p", str(door.port), "-i", str(key), "-o", "IdentitiesOnly=yes"]
    ssh += ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null"]
    return [*ssh, "-o", "LogLevel=ERROR", "127.0.0.1", *command]


@pytest.fixture
def alice_key(api: ServerProcess, new_key: Callable[[str], Path]) -> Path:
    """A key that signs in as alice (claimed through the API, as the door's claim screen
    does)."""
    key = new_key("alice")
    public = key.with_suffix(".pub").read_text().strip()
    ticket = http.post(
        f"{api.url}/door/session",
        data={"public_key": " ".join(public.split()[:2])},
        headers={"X-Pairchat-Door": DOOR_SECRET},
    ).json()["ticket"]
    claimed = http.post(f"{api.url}/door/claim", data={"ticket": ticket, "username": "alice"})
    assert claimed.status_code in (200, 201), claimed.text
    return key


@pytest.fixture
def ssh(ssh_door: Door) -> Ssh:
    def run(key: Path, *command: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ssh_command(ssh_door, key, *command),
            input=stdin if stdin is not None else "",
            capture_output=True,
            text=True,
            timeout=60,
        )

    return run


def history_of(api: ServerProcess, token: str) -> list[str]:
    reply = http.post(
        f"{api.url}/get_message_history",
        data={"user_one": "alice", "user_two": "bob"},
        headers=bearer(token),
    )
    return [m["message"] for m in reply.json()["history"]]


def test_send_and_history_over_ssh(api: ServerProcess, alice_key: Path, ssh: Ssh) -> None:
    bob = register(api.url, "bob")
    sent = ssh(alice_key, "send", "bob", "the", "backup", "finished")
    assert sent.returncode == 0, sent.stderr
    piped = ssh(alice_key, "send", "bob", stdin="line one\n  line two\n")
    assert piped.returncode == 0, piped.stderr
    assert history_of(api, bob) == ["the backup finished", "line one\n  line two"]
    shown = ssh(alice_key, "history", "bob", "--limit", "1")
    assert (shown.returncode, shown.stdout) == (0, "alice: line one\n  line two\n")


def test_other_commands_and_unknown_keys_get_one_line(
    api: ServerProcess, alice_key: Path, new_key: Callable[[str], Path], ssh: Ssh
) -> None:
    register(api.url, "bob")
    for command in (("rm", "-rf", "/"), ("sh", "-c", "id"), ("send",)):
        done = ssh(alice_key, *command)
        assert done.returncode != 0, command
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    refused = ssh(alice_key, "bash")
    assert "send, history, tail" in refused.stderr
    stranger = ssh(new_key("stranger"), "send", "bob", "hi")
    assert stranger.returncode == 1 and "no account yet" in stranger.stderr


def test_tail_over_ssh_follows_and_ends_with_the_client(
    api: ServerProcess, alice_key: Path, ssh_door: Door
) -> None:
    bob = register(api.url, "bob")
    tail = subprocess.Popen(
        ssh_command(ssh_door, alice_key, "tail", "bob"),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    assert tail.stdout is not None
    threading.Thread(target=lambda: [lines.put(x) for x in tail.stdout], daemon=True).start()  # type: ignore[union-attr]
    try:
        deadline = time.monotonic() + 30
        n = 0
        while True:  # the stream may still be opening: say something until it shows
            n += 1
            http.post(
                f"{api.url}/send_message/alice",
                data={"author": "bob", "message": f"ping {n}"},
                headers=bearer(bob),
            )
            try:
                line = lines.get(timeout=2)
            except queue.Empty:
                assert time.monotonic() < deadline, "tail printed nothing"
                continue
            assert line.startswith("bob: ping"), line
            break
    finally:
        tail.terminate()
        tail.wait(timeout=10)
    wait_until(lambda: not _command_processes(ssh_door), "the door's tail process gone")


def _command_processes(door: Door) -> list[int]:
    """``python -m tui.door`` processes started by the door itself (not its factory)."""
    from tests.support import children

    return [pid for pid in children(door.pid) if pid != door.factory_pid]
