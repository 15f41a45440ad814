"""The SSH door against an asyncssh client: only the TUI, in a pty of the client's terminal.

Each test drives the real ``python -m doors ssh`` against the real API and looks
at the TUI process it started through /proc: its environment (TERM, COLORTERM,
no secrets, no agent), the size of its terminal, its process group.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import stat
import subprocess
from collections.abc import Callable
from functools import partial
from pathlib import Path

import asyncssh
import pytest

from tests.support import ServerProcess

from .conftest import (
    FIRST_SCREEN,
    Door,
    Screen,
    group_members,
    new_session,
    open_tui,
    ssh_connect,
    tty_size,
    wait_until,
)

REFUSAL = "pairchat runs its TUI (ssh -t -p {port} 127.0.0.1) or one of: send, history, tail"


async def until(predicate: Callable[[], object], what: str, timeout: float = 30.0) -> None:
    """The async twin of ``wait_until``: let the client run while waiting."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for: {what}")
        await asyncio.sleep(0.05)


def sessions_ended(door: Door) -> int:
    """Sessions the door has ended and given their place in its limits back (its log)."""
    return len(re.findall(r" ssh session ssh-\w+ ended after ", door.log()))


def signed_out(screen: Screen) -> bool:
    """The TUI's first screen for a new key is drawn."""
    return FIRST_SCREEN in screen.text()


def test_a_pty_session_runs_the_tui_at_the_clients_size(
    ssh_door: Door, new_key: Callable[[str], Path]
) -> None:
    key = new_key("alice")

    async def scenario() -> None:
        async with await ssh_connect(ssh_door, key) as conn:
            before = set(ssh_door.sessions())
            chan, screen = await open_tui(conn, term="xterm-256color", size=(100, 30))
            pid = await asyncio.to_thread(new_session, ssh_door, before)
            await until(lambda: FIRST_SCREEN in screen.text(), "the claim screen")
            assert tty_size(pid) == (100, 30)
            assert group_members(pid) == [pid], "a process group of its own"

            drawn = len(screen.output)
            chan.change_terminal_size(120, 40)
            await asyncio.to_thread(wait_until, lambda: tty_size(pid) == (120, 40), "resize")
            await until(lambda: len(screen.output) > drawn, "a redraw at the new size")

            chan.write(b"\x11")  # Ctrl+Q
            await until(lambda: screen.exit_status is not None, "the session's end")
            assert screen.exit_status == 0
            tail = bytes(screen.output[-400:])
            assert b"\x1b[?1049l" in tail, "the alternate screen is left"
            assert b"\x1b[?1000l" in tail or b"\x1b[?1003l" in tail, "mouse reporting is off"
            await asyncio.to_thread(wait_until, lambda: not group_members(pid), "TUI gone")

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("term", "env", "colours"),
    [
        ("xterm", {}, None),
        ("xterm-256color", {}, b";5;"),
        ("xterm-256color", {"COLORTERM": "truecolor"}, b";2;"),
        ("xterm-direct", {}, b";2;"),
    ],
    ids=["16-colours", "256-colours", "COLORTERM-truecolor", "TERM-direct"],
)
def test_the_tui_draws_with_the_colours_the_client_says_it_has(
    ssh_door: Door,
    new_key: Callable[[str], Path],
    term: str,
    env: dict[str, str],
    colours: bytes | None,
) -> None:
    """TERM from the pty request and COLORTERM reach the TUI: Rich picks its colour
    system from them, and the escape sequences it writes show which it picked."""

    async def scenario() -> None:
        async with await ssh_connect(ssh_door, new_key("bob")) as conn:
            chan, screen = await open_tui(conn, term=term, env=env)
            await until(lambda: FIRST_SCREEN in screen.text(), "the claim screen")
            output = bytes(screen.output)
            extended = {kind for kind in (b";5;", b";2;") if b"\x1b[38" + kind in output}
            extended |= {kind for kind in (b";5;", b";2;") if b"\x1b[48" + kind in output}
            assert extended == ({colours} if colours else set())
            chan.close()

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("command", "term"),
    [("ls -la /", None), ("ls -la /", "xterm"), (None, None)],
    ids=["exec", "exec-with-pty", "shell-without-pty"],
)
def test_anything_but_the_tui_in_a_pty_gets_one_line_and_status_1(
    ssh_door: Door, new_key: Callable[[str], Path], command: str | None, term: str | None
) -> None:
    async def scenario() -> None:
        async with await ssh_connect(ssh_door, new_key("carol")) as conn:
            before = set(ssh_door.sessions())
            _, screen = await open_tui(conn, term=term, command=command)
            await until(lambda: screen.closed, "the channel closes")
            line = REFUSAL.format(port=ssh_door.port)
            assert screen.errors.decode().strip() == line
            assert screen.output == b""
            assert screen.exit_status == 1
            assert set(ssh_door.sessions()) <= before, "no TUI was started"

    asyncio.run(scenario())


def test_other_subsystems_and_port_forwarding_are_refused(
    ssh_door: Door, new_key: Callable[[str], Path], api: ServerProcess
) -> None:
    api_port = int(api.url.rsplit(":", 1)[1])
    key = new_key("dave")

    async def scenario() -> None:
        async with await ssh_connect(ssh_door, key) as conn:
            with pytest.raises(asyncssh.ChannelOpenError, match="Session request failed"):
                await conn.create_session(asyncssh.SSHClientSession, subsystem="netconf")
            # (sftp is the one subsystem: tests/doors/test_scp.py)
            with pytest.raises(asyncssh.ChannelOpenError):
                await conn.open_connection("127.0.0.1", api_port)
            with pytest.raises(asyncssh.ChannelListenError):
                await conn.forward_remote_port("127.0.0.1", 0, "127.0.0.1", api_port)
            with pytest.raises(asyncssh.ChannelOpenError):
                await conn.open_unix_connection("/tmp/anything.sock")

    asyncio.run(scenario())


def test_passwords_and_keyboard_interactive_are_not_offered(
    ssh_door: Door, new_key: Callable[[str], Path]
) -> None:
    async def scenario() -> None:
        with pytest.raises(asyncssh.PermissionDenied):
            await asyncssh.connect(
                "127.0.0.1",
                ssh_door.port,
                username="alice",
                password="correct horse",
                client_keys=None,
                known_hosts=None,
                agent_path=None,
                config=None,
            )

    asyncio.run(scenario())


def test_disconnect_hangs_up_the_whole_process_group(
    ssh_door: Door, new_key: Callable[[str], Path]
) -> None:
    key = new_key("erin")

    async def scenario() -> None:
        conn = await ssh_connect(ssh_door, key)
        before = set(ssh_door.sessions())
        _, screen = await open_tui(conn)
        pid = await asyncio.to_thread(new_session, ssh_door, before)
        await until(lambda: FIRST_SCREEN in screen.text(), "the claim screen")
        assert group_members(pid) == [pid]
        conn.abort()  # the network goes away, no goodbye
        await asyncio.to_thread(wait_until, lambda: not group_members(pid), "the group gone")

    asyncio.run(scenario())


def test_a_tui_that_does_not_hang_up_is_killed(
    ssh_door: Door, new_key: Callable[[str], Path]
) -> None:
    key = new_key("frank")

    async def scenario() -> None:
        conn = await ssh_connect(ssh_door, key)
        before = set(ssh_door.sessions())
        _, screen = await open_tui(conn)
        pid = await asyncio.to_thread(new_session, ssh_door, before)
        await until(lambda: FIRST_SCREEN in screen.text(), "the claim screen")
        os.kill(pid, signal.SIGSTOP)  # a stopped process never handles its SIGHUP
        conn.close()
        await asyncio.to_thread(wait_until, lambda: not group_members(pid), "SIGKILL after grace")

    asyncio.run(scenario())


def test_sessions_per_key_and_connections_per_address_are_capped(
    door_factory: Callable[..., Door], api: ServerProcess, new_key: Callable[[str], Path]
) -> None:
    door = door_factory("ssh", api.url, "--sessions-per-key", "2", "--connections-per-address", "4")
    first, second = new_key("gina"), new_key("hank")

    async def scenario() -> None:
        conns = [await ssh_connect(door, first) for _ in range(3)]
        screens = [(await open_tui(conn))[1] for conn in conns]
        for screen in screens[:2]:
            await until(partial(signed_out, screen), "a TUI")
        await until(lambda: screens[2].closed, "the third session refused")
        assert screens[2].exit_status == 1
        assert "already has 2 pairchat sessions open" in screens[2].errors.decode()

        other = await ssh_connect(door, second)  # another key: its own count
        _, screen = await open_tui(other)
        await until(lambda: FIRST_SCREEN in screen.text(), "the other key's TUI")

        with pytest.raises((ConnectionError, asyncssh.Error, OSError)):
            await ssh_connect(door, second)  # the fifth connection from 127.0.0.1

        ended = sessions_ended(door)
        conns[0].close()  # one of the first key's sessions ends: room again
        await conns[0].wait_closed()
        # a gate, not a sleep: the door has given the session's place back (its log says so)
        await until(lambda: sessions_ended(door) == ended + 1, "the door to end the session")
        _, again = await open_tui(conns[2])
        await until(lambda: FIRST_SCREEN in again.text(), "a session after one closed")
        for conn in [*conns[1:], other]:
            conn.close()

    asyncio.run(scenario())


def test_a_connection_that_never_authenticates_is_closed_after_the_grace_time(
    door_factory: Callable[..., Door], api: ServerProcess
) -> None:
    door = door_factory("ssh", api.url, "--login-timeout", "1")
    with socket.create_connection(("127.0.0.1", door.port), timeout=30) as sock:
        sock.sendall(b"SSH-2.0-test\r\n")
        received = b""
        while chunk := sock.recv(65536):  # the server's version and key exchange, then EOF
            received += chunk
        assert received.startswith(b"SSH-2.0-")


def test_an_unresponsive_client_is_dropped_by_keepalives(
    door_factory: Callable[..., Door], api: ServerProcess, new_key: Callable[[str], Path]
) -> None:
    door = door_factory("ssh", api.url, "--keepalive", "0.3")
    key = new_key("iris")

    async def scenario() -> None:
        conn = await ssh_connect(door, key)
        before = set(door.sessions())
        _, screen = await open_tui(conn)
        pid = await asyncio.to_thread(new_session, door, before)
        await until(lambda: FIRST_SCREEN in screen.text(), "the claim screen")
        transport = conn._transport  # the client stops reading: keepalives go unanswered
        assert transport is not None
        transport.pause_reading()
        await asyncio.to_thread(wait_until, lambda: not group_members(pid), "the session ended")
        conn.abort()

    asyncio.run(scenario())


def test_the_host_key_is_made_once_and_kept(
    door_factory: Callable[..., Door], api: ServerProcess, new_key: Callable[[str], Path]
) -> None:
    first = door_factory("ssh", api.url)
    key_file = first.data_dir / "ssh_host_ed25519_key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    shown = subprocess.run(
        ["ssh-keygen", "-lf", f"{key_file}.pub"], capture_output=True, text=True, check=True
    ).stdout.split()
    assert shown[1] == first.fingerprint and shown[-1] == "(ED25519)"

    async def served_key(door: Door) -> str:
        conn = await ssh_connect(door, new_key(f"k{door.port}"))
        host_key = conn.get_server_host_key()
        conn.close()
        assert host_key is not None
        return str(host_key.get_fingerprint("sha256"))

    assert asyncio.run(served_key(first)) == first.fingerprint
    before = key_file.read_bytes()
    first.stop()
    second = door_factory("ssh", api.url, data_dir=first.data_dir)
    assert second.fingerprint == first.fingerprint
    assert asyncio.run(served_key(second)) == first.fingerprint
    assert key_file.read_bytes() == before


def test_stopping_the_door_ends_every_session_and_the_factory(
    ssh_door: Door, new_key: Callable[[str], Path]
) -> None:
    key = new_key("last")

    async def scenario() -> None:
        conn = await ssh_connect(ssh_door, key)
        screens = [(await open_tui(conn))[1] for _ in range(2)]
        for screen in screens:
            await until(partial(signed_out, screen), "a TUI")
        pids, factory = ssh_door.sessions(), ssh_door.factory_pid
        assert len(pids) == 2
        assert await asyncio.to_thread(ssh_door.stop) == 0  # SIGTERM
        await until(lambda: all(s.closed for s in screens), "the client's channels closed")
        assert not any(group_members(p) for p in [*pids, factory])
        conn.close()

    asyncio.run(scenario())
