"""A throwaway real ``redis-server`` on a free 127.0.0.1 port, for tests of multi-node mode.

``RedisServer(workdir).start()`` runs one in the foreground of a child process (no
persistence: ``--save ''``, ``--appendonly no``) and waits until it answers PING;
``kill()`` ends it at once (SIGKILL) and ``start()`` again brings it back on the same
port, as a crashed and restarted Redis. The ``redis_server`` fixture gives a running
one and ends it after the test; use it from a test module with
``from tests.redis_server import redis_server  # noqa: F401`` (or from conftest.py).

Without ``redis-server`` on the PATH this fails loudly, never skips: multi-node mode
is not tested without it (``apt-get install redis-server``; the system service need
not run).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import free_port, kill_process, stop_process


def redis_server_path() -> str:
    path = shutil.which("redis-server")
    if path is None:
        raise RuntimeError(
            "redis-server is not installed: multi-node tests need a real one "
            "(apt-get install -y redis-server; the system service need not run)"
        )
    return path


class RedisServer:
    """One ``redis-server`` process serving ``127.0.0.1:port``, restartable on that port."""

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        self.workdir = workdir
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 10.0) -> RedisServer:
        assert self.proc is None, "already running"
        self.workdir.mkdir(parents=True, exist_ok=True)
        cmd = [redis_server_path(), "--port", str(self.port), "--bind", "127.0.0.1"]
        cmd += ["--save", "", "--appendonly", "no", "--daemonize", "no"]
        cmd += ["--dir", str(self.workdir), "--logfile", ""]
        with (self.workdir / "redis.log").open("ab") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while not self.answers():
            if self.proc.poll() is not None:
                log_text = (self.workdir / "redis.log").read_text(errors="replace")
                raise RuntimeError(f"redis-server exited ({self.proc.returncode}):\n{log_text}")
            if time.monotonic() > deadline:
                self.kill()
                raise TimeoutError(f"redis-server did not answer on port {self.port}")
            time.sleep(0.02)
        return self

    def answers(self) -> bool:
        """Whether it answers PING right now."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def kill(self) -> None:
        """SIGKILL: gone at once, its clients' connections reset."""
        if self.proc is not None:
            kill_process(self.proc)
            self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)
            self.proc = None


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A running throwaway Redis on a free port; killed after the test."""
    server = RedisServer(tmp_path / "redis").start()
    try:
        yield server
    finally:
        server.kill()
