"""Fixtures: real servers on 127.0.0.1 over temp data folders."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import LiveServer, ServerProcess, register


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[Callable[..., LiveServer]]:
    """Factory: ``live_server(open_mode=False, **config)`` starts a real server."""
    started: list[LiveServer] = []

    def start(open_mode: bool = False, data_dir: Path | None = None, **config: Any) -> LiveServer:
        folder = data_dir or tmp_path / f"data{len(started)}"
        server = LiveServer(folder, {"OPEN_MODE": open_mode, **config}).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def open_server(live_server: Callable[..., LiveServer]) -> LiveServer:
    """A server in open (seed) mode."""
    return live_server(open_mode=True)


@pytest.fixture
def server(live_server: Callable[..., LiveServer]) -> LiveServer:
    """A server with auth on (the default)."""
    return live_server()


@pytest.fixture
def users(server: LiveServer) -> dict[str, str]:
    """alice, bob, carol and dave registered on ``server``: name -> token."""
    return {name: register(server.url, name) for name in ("alice", "bob", "carol", "dave")}


@pytest.fixture
def server_process(tmp_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    """Factory: the real ``pairchat-server`` program in a child process."""
    started: list[ServerProcess] = []

    def start(*args: str, data_dir: Path | None = None, port: int | None = None) -> ServerProcess:
        folder = data_dir or tmp_path / "data"
        proc = ServerProcess(folder, *args, port=port).start()
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()
