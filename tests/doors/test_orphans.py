"""Issue 23, item 4, for the browser door: no tab's TUI outlives its door.

Before: a web door killed outright (SIGKILL, an OOM kill) left each tab's
``python -m tui.door`` running under init, its input pipe at EOF, spinning at
~11 % of a core for good. Only the door's own pid is killed here, never its group.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Callable
from functools import partial

import aiohttp

from tests.support import ServerProcess

from .conftest import Door, group_members, new_session, wait_until

TABS = 2


def _gone(pid: int) -> bool:
    return not group_members(pid)


def test_a_killed_web_door_takes_its_tabs_tuis_with_it(
    api: ServerProcess, door_factory: Callable[..., Door]
) -> None:
    door = door_factory("web", api.url)
    origin = f"http://127.0.0.1:{door.port}"
    pids: list[int] = []

    async def run() -> None:
        async with aiohttp.ClientSession() as session:
            sockets = []
            for _ in range(TABS):
                before = set(door.sessions())
                socket = await session.ws_connect(f"{origin}/ws?width=80&height=24", origin=origin)
                sockets.append(socket)
                pids.append(new_session(door, before))
                # the TUI is up: it has drawn its first screen
                async with asyncio.timeout(60):
                    while True:
                        message = await socket.receive()
                        if message.type == aiohttp.WSMsgType.BINARY:
                            break
                        assert message.type == aiohttp.WSMsgType.TEXT, message
            assert door.proc is not None
            os.kill(door.pid, signal.SIGKILL)  # the door only, not its tabs' groups
            door.proc.wait(timeout=10)
            for socket in sockets:
                await socket.close()

    try:
        asyncio.run(run())
        for pid in pids:
            wait_until(partial(_gone, pid), f"tab TUI {pid} gone", timeout=10)
    finally:
        for pid in pids:  # on the old code they run on for good: they are ours to end
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
