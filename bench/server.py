"""The server under test: ``pairchat-server`` (granian) as a child process.

It runs the production path (``python -m backend.server.cli serve``) over a temporary
data folder, on a free port of 127.0.0.1, and is killed by PID. Helpers read the
CPU time and resident memory of the main process and of its granian workers
from ``/proc``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

import httpx

REPO = Path(__file__).resolve().parent.parent
FAST_ARGON2 = {"PAIRCHAT_ARGON2_TIME_COST": "1", "PAIRCHAT_ARGON2_MEMORY_COST": "1024"}
"""argon2id stays argon2id, with its cheapest cost, so registering many users is fast."""
ROOMY_LIMITS = {
    "PAIRCHAT_REGISTER_RATE_LIMIT": "1000000 per minute",
    "PAIRCHAT_SEND_RATE_LIMIT": "1000000 per minute",
    "PAIRCHAT_NEW_CONVERSATION_RATE_LIMIT": "1000000 per minute",
    "PAIRCHAT_HASH_PER_ADDRESS": "1000",
    "PAIRCHAT_HASH_QUEUE": "1000",
}
"""The load comes from one address and sends as fast as it can: the abuse limits
(docs/deploy.md) would measure themselves, not the server; ``bench/abuse.py`` uses
the defaults."""
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Server:
    """One ``pairchat-server`` process; use as a context manager."""

    def __init__(
        self,
        data_dir: Path,
        *,
        open_mode: bool = True,
        threads: int | None = None,
        args: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
    ) -> None:
        """``env`` replaces the roomy limits (``{}``: the defaults of docs/deploy.md)."""
        self.data_dir = data_dir
        self.open_mode = open_mode
        self.threads = threads
        self.args = args
        self.env = ROOMY_LIMITS if env is None else env
        self.port = free_port()
        self.host = "127.0.0.1"
        self.url = f"http://{self.host}:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self._log = data_dir.parent / f"server-{self.port}.log"

    # -- lifecycle -----------------------------------------------------------
    def start(self, timeout: float = 30.0) -> Server:
        cmd = [sys.executable, "-m", "backend.server.cli", "serve", "--host", self.host]
        cmd += ["--port", str(self.port), "--data-dir", str(self.data_dir)]
        if self.open_mode:
            cmd.append("--open")
        if self.threads is not None:
            cmd += ["--threads", str(self.threads)]
        cmd += self.args
        env = {**os.environ, **FAST_ARGON2, **self.env}
        with self._log.open("wb") as log:
            self.proc = subprocess.Popen(
                cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT
            )
        self._wait_healthy(timeout)
        return self

    def _wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                break
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        tail = self._log.read_text(errors="replace")[-2000:] if self._log.exists() else ""
        self.stop()
        raise RuntimeError(f"pairchat-server did not become healthy at {self.url}\n{tail}")

    def stop(self) -> None:
        """Kill the workers and the main process by PID (SIGKILL after a short grace)."""
        if self.proc is None:
            return
        pids = [*self.worker_pids(), self.proc.pid]
        for pid in pids:
            _signal(pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)
        for pid in pids:
            _signal(pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        self.proc = None

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- measurements ----------------------------------------------------------
    @property
    def pid(self) -> int:
        assert self.proc is not None, "server not started"
        return self.proc.pid

    def worker_pids(self) -> list[int]:
        """The granian worker processes: the children of the main PID."""
        if self.proc is None:
            return []
        return _children(self.proc.pid)

    def cpu_seconds(self) -> float:
        """utime + stime of the granian workers (the processes serving requests)."""
        return sum(_cpu_seconds(pid) for pid in self.worker_pids())

    def rss_mib(self) -> float:
        """VmRSS of the main process plus its workers, in MiB."""
        pids = [self.pid, *self.worker_pids()]
        return sum(_rss_kib(pid) for pid in pids) / 1024

    def threads_count(self) -> int:
        """OS threads in the worker processes (granian's blocking threads among them)."""
        total = 0
        for pid in self.worker_pids():
            total += int(_status_field(pid, "Threads") or 0)
        return total


def _signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def _children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        return found
    for task in tasks:
        try:
            text = Path(f"/proc/{pid}/task/{task}/children").read_text()
        except FileNotFoundError:
            continue
        found.extend(int(child) for child in text.split())
    return sorted(set(found))


def _cpu_seconds(pid: int) -> float:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return 0.0
    # Fields after the ")" closing the command name: utime and stime are 14 and 15.
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def _status_field(pid: int, name: str) -> str | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key == name:
                return value.strip()
    except FileNotFoundError:
        return None
    return None


def _rss_kib(pid: int) -> int:
    value = _status_field(pid, "VmRSS")
    return int(value.split()[0]) if value else 0
