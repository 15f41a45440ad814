"""Issue 23, item 4: no worker outlives its server.

A SIGKILL of the server's main process (a hand ``kill -9``, an OOM kill) used to
leave its granian workers running: serving on the port, holding the data
folder's lock, so the next ``pairchat-server serve`` was refused until someone
found the workers and killed them. Real ``pairchat-server`` processes; only the
main pid is killed, never the group.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

from tests.support import (
    ServerProcess,
    alive,
    bearer,
    held_feed_waits,
    http,
    read_connections,
    register,
)

Start = Callable[..., ServerProcess]


def test_a_sigkilled_main_process_takes_its_workers_and_a_new_server_starts(
    server_process: Start, tmp_path: Path
) -> None:
    """Before: the workers ran on after the main process's SIGKILL (reparented to init),
    the held long-polls hung for their whole minute, and a new server on the folder was
    refused ("another pairchat server (pid <the dead one>) is serving ...")."""
    server = server_process("--workers", "2")
    tokens = [register(server.url, f"user{n}") for n in range(3)]
    before = set(read_connections(server.port))
    waits = [held_feed_waits(server.url, token, 2) for token in tokens]
    deadline = time.monotonic() + 20
    while (
        len(
            [
                c
                for c, unread in read_connections(server.port).items()
                if c not in before and not unread
            ]
        )
        < 6
    ):
        assert time.monotonic() < deadline, "the 6 waits never reached the server"
        time.sleep(0.02)
    workers = server.worker_pids()
    assert len(workers) == 2
    assert server.proc is not None
    try:
        started = time.monotonic()
        os.kill(server.pid, signal.SIGKILL)  # the main process only, as the OOM killer does
        server.proc.wait(timeout=10)
        while any(alive(pid) for pid in workers) and time.monotonic() - started < 10:
            time.sleep(0.02)
        took = time.monotonic() - started
        assert not any(alive(pid) for pid in workers), "a worker outlived its server"
        assert took < 2.0, f"the workers stopped after {took:.2f} s"
        for threads, answers in waits:
            for thread in threads:
                thread.join(timeout=10)
            assert answers == [200, 200], answers  # answered, not cut off
        again = server_process(data_dir=server.data_dir, port=server.port)
        assert http.get(f"{again.url}/updates", headers=bearer(tokens[0])).status_code == 200
    finally:
        for pid in workers:  # on the old code: they are ours, and would serve on for good
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
