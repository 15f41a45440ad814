"""The session factory (doors/factory.py) with a stand-in session program.

What the SSH door relies on, checked on real processes: each session gets the
pty as its controlling terminal in a session of its own, the environment the
door sent, its exit status back; hanging up ends its whole process group, with
SIGKILL for a group that ignores SIGHUP; a factory that died is started again;
the factory's sessions end with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any

from doors.factory import FactorySession, SessionFactory
from doors.pty import Size, open_pty
from doors.session_env import program_env

from .conftest import alive, group_members, wait_until

COMMAND = (sys.executable, "-m", "tests.doors.fake_session")


def run(test: Callable[[SessionFactory], Coroutine[Any, Any, None]]) -> None:
    async def main() -> None:
        factory = SessionFactory(COMMAND, program_env())
        try:
            await factory.start()
            await test(factory)
        finally:
            await asyncio.to_thread(factory.close)

    asyncio.run(main())


@asynccontextmanager
async def session(
    factory: SessionFactory, **env: str
) -> AsyncIterator[tuple[FactorySession, int, str]]:
    """A session on a new pty: (its handle, the pty master, the line it wrote)."""
    master, slave = open_pty(Size(80, 24))
    try:
        handle = await factory.open(slave, {"PATH": "/usr/bin:/bin", **env})
    finally:
        os.close(slave)
    try:
        line = await asyncio.to_thread(read_line, master)
        yield handle, master, line
    finally:
        os.close(master)


def read_line(master: int) -> str:
    data = bytearray()

    def line_read() -> bool:
        # OSError: nothing yet (EAGAIN), or nobody holds the slave yet (EIO)
        with contextlib.suppress(OSError):
            data.extend(os.read(master, 4096))
        return b"\n" in data

    wait_until(line_read, "a line from the session")
    return data.decode().strip()


def test_a_session_owns_its_pty_and_gets_the_doors_environment() -> None:
    async def test(factory: SessionFactory) -> None:
        async with session(factory, HELLO="from the door", FAKE="exit:7") as (handle, _, line):
            assert line.startswith("sid=True pgrp=True fg=True tty=/dev/pts/"), line
            assert line.endswith("hello=from the door")
            assert await handle.wait() == 7
            await asyncio.to_thread(
                wait_until, lambda: not group_members(handle.pid), "the sleep killed too"
            )

    run(test)


def test_hanging_up_ends_the_whole_group() -> None:
    async def test(factory: SessionFactory) -> None:
        async with session(factory) as (handle, _, _):
            await asyncio.to_thread(
                wait_until, lambda: len(group_members(handle.pid)) == 2, "session and sleep"
            )
            handle.hang_up()
            assert await handle.wait() == -signal.SIGHUP
            # the rest of the group got the SIGHUP too; on a loaded machine it may take
            # a moment to be scheduled and die (it was asserted the same instant)
            await asyncio.to_thread(wait_until, lambda: not group_members(handle.pid), "all gone")

    run(test)


def test_a_group_that_ignores_sighup_is_killed() -> None:
    async def test(factory: SessionFactory) -> None:
        async with session(factory, FAKE="ignore-hup") as (handle, _, _):
            await asyncio.to_thread(
                wait_until, lambda: len(group_members(handle.pid)) == 2, "session and sleep"
            )
            handle.hang_up()
            assert await handle.wait() == -signal.SIGKILL
            await asyncio.to_thread(wait_until, lambda: not group_members(handle.pid), "all gone")

    run(test)


def test_a_factory_that_died_is_started_again() -> None:
    async def test(factory: SessionFactory) -> None:
        first = factory.pid
        assert first is not None
        os.kill(first, signal.SIGKILL)
        process = factory.process
        assert process is not None
        await asyncio.to_thread(wait_until, lambda: process.poll() is not None, "dead")
        async with session(factory, FAKE="exit:0") as (handle, _, line):
            assert line.startswith("sid=True")
            assert await handle.wait() == 0
        assert factory.pid not in (None, first)

    run(test)


def test_the_factory_hangs_up_its_sessions_when_the_door_goes() -> None:
    pids: list[int] = []

    async def test(factory: SessionFactory) -> None:
        async with session(factory) as (handle, _, _):
            pids.append(handle.pid)
            factory_pid = factory.pid
            await asyncio.to_thread(factory.close)  # stdin closed, as when the door exits
            assert factory_pid is not None and not alive(factory_pid)
            assert group_members(handle.pid) == []

    run(test)
    assert pids
