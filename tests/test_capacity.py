"""The default server holds far more than 1,036 clients: capacity from the open-files limit.

``backend/server/capacity.py`` raises the soft open-files limit to the hard one at
start and sizes connections and held clients from it. Before, the default
``--threads 1100`` held 1,036 waits per worker and answered the 1,037th at once.
"""

from __future__ import annotations

import asyncio
import resource
from pathlib import Path

import pytest

from backend.core.settings import THREAD_RESERVE, Settings
from backend.server import capacity
from tests.support import ServerProcess, register

HELD = 1_200  # past the old default's 1,036


def test_the_plan_follows_the_open_files_limit() -> None:
    plan = capacity.plan(Settings(), 20_000)
    assert plan.connections == 20_000 - (3 * 512 + 256) == 18_208
    assert plan.held == plan.connections - THREAD_RESERVE >= 18_000
    assert capacity.plan(Settings(), 10**7).connections == capacity.MAX_CONNECTIONS
    assert capacity.plan(Settings(max_waiters=5), 20_000).held == 5
    assert capacity.plan(Settings(threads=1100), 20_000).held == 1100 - THREAD_RESERVE
    assert capacity.plan(Settings(max_connections=3000), 20_000).connections == 3000
    assert capacity.plan(Settings(), 1024).connections == 2 * THREAD_RESERVE, "never below"


async def _hold_streams(port: int, token: str, count: int) -> list[bytes]:
    """``count`` streams on raw sockets; each one's first line once its opening arrived."""
    request = (
        f"GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\r\n"
    ).encode()
    writers = []
    firsts = []
    try:
        for _ in range(count):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writers.append(writer)
            writer.write(request)
            firsts.append(await asyncio.wait_for(reader.readline(), 20))
        return firsts
    finally:
        for writer in writers:
            writer.close()


@pytest.mark.live
def test_the_default_server_holds_more_than_the_old_cap(tmp_path: Path) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < HELD + 200:  # this test's own sockets (the server raises its own limit)
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, HELD * 2), hard))
    log = tmp_path / "server.log"
    # one user holds them all here: the per-user cap is not what this test is about
    server = ServerProcess(
        tmp_path / "data", env={"PAIRCHAT_MAX_WAITS_PER_USER": str(HELD * 2)}, log=log
    ).start()
    try:
        token = register(server.url, "many")
        firsts = asyncio.run(_hold_streams(server.port, token, HELD))
        assert firsts == [b"HTTP/1.1 200 OK\r\n"] * HELD
    finally:
        server.stop()
    held = int(log.read_text().split("holding up to ")[1].split()[0])
    assert held > HELD


@pytest.mark.live
@pytest.mark.parametrize("flag", ["--threads", "--max-waiters"])
def test_the_old_knobs_still_decide_when_given(tmp_path: Path, flag: str) -> None:
    log = tmp_path / "server.log"
    server = ServerProcess(tmp_path / "data", flag, "100", log=log).start()
    server.stop()
    expected = 100 - THREAD_RESERVE if flag == "--threads" else 100
    assert f"holding up to {expected} clients per worker" in log.read_text()
