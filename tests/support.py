"""Test support: a real pairchat server on 127.0.0.1 (in a thread or a process).

No mocks: the servers here are the real Flask app over real SQLite files in a
temp folder, reached over real HTTP with httpx.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from werkzeug.serving import BaseWSGIServer, make_server

from backend import create_app

REPO = Path(__file__).resolve().parent.parent
# argon2id stays argon2id in tests, with its cheapest parameters: registration
# cost is not what these tests measure.
FAST_HASH = {"ARGON2_TIME_COST": 1, "ARGON2_MEMORY_COST": 1024}


# One client for the whole suite: building an httpx.Client costs ~50 ms (TLS context),
# more than most requests here. No keep-alive, so a restarted server never meets a
# stale pooled connection.
http = httpx.Client(timeout=60, limits=httpx.Limits(max_keepalive_connections=0))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_healthy(url: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if http.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"no server at {url}")
        time.sleep(0.05)


class LiveServer:
    """The real app under Werkzeug's threaded server, in a thread of the test process."""

    def __init__(self, data_dir: Path, config: dict[str, Any] | None = None) -> None:
        self.data_dir = data_dir
        self.config = {"DATA_DIR": str(data_dir), **FAST_HASH, **(config or {})}
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self.app: Any = None

    def start(self) -> LiveServer:
        self.app = create_app(dict(self.config))
        self._server = make_server("127.0.0.1", self.port, self.app, threaded=True)
        self._server.daemon_threads = True  # type: ignore[attr-defined]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        wait_healthy(self.url)
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self.app.extensions["pairchat"].close()
        self._server.shutdown()
        self._server.server_close()
        assert self._thread is not None
        self._thread.join(timeout=10)
        self._server = None

    @property
    def services(self) -> Any:
        return self.app.extensions["pairchat"]


class ServerProcess:
    """``pairchat-server`` as users run it (granian unless ``dev``), in a child process."""

    def __init__(self, data_dir: Path, *args: str, port: int | None = None) -> None:
        self.data_dir = data_dir
        self.args = args
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> ServerProcess:
        env = {
            **os.environ,
            "PAIRCHAT_ARGON2_TIME_COST": "1",
            "PAIRCHAT_ARGON2_MEMORY_COST": "1024",
        }
        cmd = [sys.executable, "-m", "backend.cli", "serve", "--port", str(self.port)]
        cmd += ["--data-dir", str(self.data_dir), *self.args]
        # A session of its own: granian forks workers, and kill() must reach them all.
        self.proc = subprocess.Popen(
            cmd,
            cwd=REPO,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_healthy(self.url)
        return self

    def kill(self) -> None:
        """SIGKILL to the server and its workers: no chance to flush or clean up."""
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
            self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
            self.proc = None


def register(url: str, username: str, password: str = "correct horse") -> str:
    reply = http.post(f"{url}/register", data={"username": username, "password": password})
    assert reply.status_code == 201, reply.text
    token: str = reply.json()["token"]
    return token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def files_outside(data_dir: Path, before: set[Path]) -> set[Path]:
    """Files that appeared anywhere under data_dir's parent but not directly in data_dir."""
    now = {p for p in data_dir.parent.rglob("*") if p.is_file()}
    return {p for p in now - before if p.parent != data_dir}
