"""Clients that hang up all at once leave one line each in a door's log, never a traceback.

Before: an SSH client that closed its channel while its TUI was writing left a
``BrokenPipeError: Channel not open for sending`` traceback (asyncio's "Exception in
callback PtyPump._readable()"): the door wrote the TUI's output to a channel asyncssh
had already closed, one turn of the loop before it said so. 57 such tracebacks came
from one mass drop.

The race is made certain here rather than waited for: the door is stopped
(SIGSTOP), every client closes its channel (the close waits in the door's socket,
checked in the kernel's receive queue), then every TUI's terminal gets output
(waiting in its pty); on SIGCONT the door's loop sees both ready in the same turn,
the socket first.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable
from pathlib import Path

import aiohttp
import asyncssh

from tests.support import ServerProcess, read_connections

from .conftest import FIRST_SCREEN, WAIT, Door, Screen, new_session, open_tui, wait_until

SESSIONS = 5


def cmdline(pid: int) -> bytes:
    return Path(f"/proc/{pid}/cmdline").read_bytes()


async def drawn(screens: list[Screen]) -> None:
    for screen in screens:
        while FIRST_SCREEN not in screen.text():
            await asyncio.sleep(0.05)


async def unread_by(port: int, connections: int) -> None:
    while sum(1 for unread in read_connections(port).values() if unread) < connections:
        await asyncio.sleep(0.02)


def test_ssh_clients_closing_while_their_tuis_write_leave_no_traceback(
    api: ServerProcess, ssh_door: Door
) -> None:
    async def run() -> None:
        opened: list[tuple[asyncssh.SSHClientConnection, asyncssh.SSHClientChannel[bytes]]] = []
        screens: list[Screen] = []
        for _ in range(SESSIONS):
            conn = await asyncssh.connect(
                "127.0.0.1",
                ssh_door.port,
                username="anyone",
                client_keys=[asyncssh.generate_private_key("ssh-ed25519")],
                known_hosts=None,
                agent_path=None,
                config=None,
            )
            chan, screen = await open_tui(conn)
            opened.append((conn, chan))
            screens.append(screen)
        await asyncio.wait_for(drawn(screens), WAIT)
        tuis = ssh_door.sessions()
        assert len(tuis) == SESSIONS
        os.kill(ssh_door.pid, signal.SIGSTOP)
        try:
            for _, chan in opened:
                chan.close()
            # Every close is in the door's socket, unread:
            await asyncio.wait_for(unread_by(ssh_door.port, SESSIONS), WAIT)
            for pid in tuis:  # and then output from every TUI, waiting in its pty
                tty = os.open(f"/proc/{pid}/fd/1", os.O_WRONLY | os.O_NOCTTY)
                try:
                    os.write(tty, b"\x1b[0m")
                finally:
                    os.close(tty)
        finally:
            os.kill(ssh_door.pid, signal.SIGCONT)
        wait_until(lambda: ssh_door.sessions() == [], "every session hung up")
        for conn, _ in opened:
            conn.close()
            await conn.wait_closed()

    asyncio.run(run())
    wait_until(lambda: ssh_door.log().count("session ended") == SESSIONS, "one line each")
    log = ssh_door.log()
    assert "Traceback" not in log, log
    assert "BrokenPipeError" not in log


def test_browser_tabs_closed_while_their_tui_starts_leave_one_line_each(
    api: ServerProcess, door_factory: Callable[..., Door]
) -> None:
    """Tabs that go before their TUI has started: "tab ended" for each, and no "ERROR
    textual-serve: Application failed to start" (before: one such error per tab, as if
    pairchat were broken, when the visitor had only left; a mass drop while many TUIs
    were starting logged one for each). Each TUI is held (SIGSTOP) as soon as it has
    exec'ed, as a loaded machine holds it, so it is ended before its first line."""
    door = door_factory("web", api.url)
    origin = f"http://127.0.0.1:{door.port}"
    tabs = 3

    async def run() -> None:
        async with aiohttp.ClientSession() as session:
            for _ in range(tabs):
                before = set(door.sessions())
                url = f"{origin}/ws?width=80&height=24"
                socket = await session.ws_connect(url, origin=origin)
                pid = new_session(door, before)
                # Exec'ed (a child stopped between fork and exec would hold up the door's
                # start of it), and not yet started: held there.
                wait_until(lambda pid=pid: b"tui.door" in cmdline(pid), "the TUI exec'ed")
                os.kill(pid, signal.SIGSTOP)
                await socket.close()

    asyncio.run(run())
    wait_until(lambda: door.log().count("tab ended") == tabs, "every tab ended")
    wait_until(lambda: door.sessions() == [], "every tab's TUI gone")
    log = door.log()
    assert "failed to start" not in log, log
    assert "Traceback" not in log, log
