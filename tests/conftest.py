"""Fixtures: the real app over temp data folders, in-process or on 127.0.0.1; the two tiers.

- ``server``, ``open_server``, ``users`` and the factory ``app_server`` give a
  live server (a thread serving 127.0.0.1). In a module (or test) marked
  ``both_tiers`` they run each test twice: ``[inprocess]`` through Flask's test
  client, ``[live]`` over real HTTP — same assertions, same SQLite files.
- ``live_server`` and ``server_process`` are always live.
- Every test that reaches a live server is marked ``live`` here, so
  ``just test-fast`` (``-m "not live"``) runs the in-process tier and the unit
  tests only; ``just test`` runs everything.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import (
    InProcessServer,
    LiveServer,
    Server,
    ServerProcess,
    register,
    settings_for,
)

TIERS = ("inprocess", "live")
# Fixtures that start a real server (a thread on a socket, or a process).
LIVE_FIXTURES = {"app_server", "live_server", "server_process", "killable_server", "fuzz_server"}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "tier" in metafunc.fixturenames and metafunc.definition.get_closest_marker("both_tiers"):
        metafunc.parametrize("tier", TIERS)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        callspec = getattr(item, "callspec", None)
        tier = callspec.params.get("tier") if callspec is not None else None
        names = set(getattr(item, "fixturenames", ()))
        if tier == "live" or (tier is None and names & LIVE_FIXTURES):
            item.add_marker(pytest.mark.live)


@pytest.fixture
def tier() -> str:
    """Where ``app_server`` runs the app; ``both_tiers`` parametrizes it over ``TIERS``."""
    return "live"


@pytest.fixture
def app_server(tier: str, tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """Factory: ``app_server(open_mode=False, data_dir=None, **settings)``, in ``tier``."""
    started: list[Server] = []

    def start(open_mode: bool = False, data_dir: Path | None = None, **settings: Any) -> Server:
        folder = data_dir or tmp_path / f"data{len(started)}"
        config = settings_for(folder, open_mode=open_mode, **settings)
        server: Server = (InProcessServer if tier == "inprocess" else LiveServer)(config)
        started.append(server.start())
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[Callable[..., LiveServer]]:
    """Factory: ``live_server(open_mode=False, data_dir=None, **settings)``, always on a socket."""
    started: list[LiveServer] = []

    def start(open_mode: bool = False, data_dir: Path | None = None, **settings: Any) -> LiveServer:
        folder = data_dir or tmp_path / f"live{len(started)}"
        server = LiveServer(settings_for(folder, open_mode=open_mode, **settings)).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def open_server(app_server: Callable[..., Server]) -> Server:
    """A server in open (seed) mode."""
    return app_server(open_mode=True)


@pytest.fixture
def server(app_server: Callable[..., Server]) -> Server:
    """A server with auth on (the default)."""
    return app_server()


@pytest.fixture
def users(server: Server) -> dict[str, str]:
    """alice, bob, carol and dave registered on ``server``: name -> token."""
    return {name: register(server.url, name) for name in ("alice", "bob", "carol", "dave")}


@pytest.fixture
def server_process(tmp_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    """Factory: the real ``pairchat-server`` program in a child process."""
    started: list[ServerProcess] = []

    def start(
        *args: str,
        data_dir: Path | None = None,
        port: int | None = None,
        env: dict[str, str] | None = None,
    ) -> ServerProcess:
        folder = data_dir or tmp_path / f"data{len(started) or ''}"
        proc = ServerProcess(folder, *args, port=port, env=env).start()
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()
