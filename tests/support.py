"""Test support: the real pairchat app over real SQLite files in a temp folder.

Two ways to reach it, both without mocks of our own code:
- ``LiveServer``: the app under Werkzeug's threaded server on 127.0.0.1 (and
  ``ServerProcess``: the ``pairchat-server`` program itself), over real HTTP;
- ``InProcessServer``: the same app called through Flask's test client, no
  socket, no thread: the fast tier (``just test-fast``).
Tests talk to either with the httpx client ``http`` (or ``client()``): its
transport sends a request for an in-process server's made-up host through the
test client and everything else over the network, so one test body runs in
both tiers.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
from flask import Flask
from werkzeug.serving import BaseWSGIServer, make_server
from werkzeug.test import TestResponse

from backend.core.settings import Settings
from backend.server.app import create_app
from backend.services.wiring import Services, build_services

REPO = Path(__file__).resolve().parent.parent
# argon2id stays argon2id in tests, with its cheapest parameters: registration
# cost is not what these tests measure.
FAST_HASH = {"argon2_time_cost": 1, "argon2_memory_cost": 1024}
# Tests of other things register many users, send fast and run on tiny file
# systems from one address: the abuse limits are out of their way.
# tests/test_abuse.py holds servers to the real defaults.
ROOMY_LIMITS: dict[str, Any] = {
    "register_rate_limit": "100000 per minute",
    "send_rate_limit": "100000 per minute",
    "new_conversation_rate_limit": "100000 per minute",
    "hash_per_address": 1000,
    "hash_queue": 1000,
    "min_free_disk_mb": 0,
}
TEST_SETTINGS: dict[str, Any] = {**FAST_HASH, **ROOMY_LIMITS}
# The same, as the environment of a ``pairchat-server`` child process.
TEST_ENV = {f"PAIRCHAT_{name.upper()}": str(value) for name, value in TEST_SETTINGS.items()}


def settings_for(data_dir: Path, **overrides: Any) -> Settings:
    """A test server's settings: defaults (not the environment), ``TEST_SETTINGS``, overrides."""
    return Settings(data_dir=data_dir, **{**TEST_SETTINGS, **overrides})


# -- the transport -----------------------------------------------------------------
_IN_PROCESS: dict[str, Flask] = {}  # made-up host -> app


class Transport(httpx.BaseTransport):
    """In-process hosts through Flask's test client; the rest over real HTTP."""

    def __init__(self) -> None:
        # No keep-alive, so a restarted server never meets a stale pooled connection.
        self._network = httpx.HTTPTransport(limits=httpx.Limits(max_keepalive_connections=0))

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        app = _IN_PROCESS.get(request.url.host)
        if app is None:
            return self._network.handle_request(request)
        # httpx's own Host (the made-up name) is dropped; a Host the test set is kept
        headers = [
            (k, v)
            for k, v in request.headers.multi_items()
            if k.lower() != "host" or v != request.url.netloc.decode("ascii")
        ]
        reply = app.test_client().open(
            request.url.raw_path.decode("ascii"),
            method=request.method,
            headers=headers,
            data=request.read(),
            buffered=False,
        )
        if reply.mimetype == "text/event-stream":  # an endless stream: read as it comes
            return httpx.Response(
                reply.status_code,
                headers=reply.headers.to_wsgi_list(),
                stream=_Chunks(reply),
                request=request,
            )
        try:
            return httpx.Response(
                reply.status_code,
                headers=reply.headers.to_wsgi_list(),
                content=reply.get_data(),
                request=request,
            )
        finally:
            reply.close()

    def close(self) -> None:
        self._network.close()


class _Chunks(httpx.SyncByteStream):
    """A test client's streamed reply as httpx reads a network one (``/events``)."""

    def __init__(self, reply: TestResponse) -> None:
        self._reply = reply

    def __iter__(self) -> Iterator[bytes]:
        yield from self._reply.response

    def close(self) -> None:
        self._reply.close()


def client(**kwargs: Any) -> httpx.Client:
    """An httpx client (``base_url``, ``headers``, …) that reaches both kinds of server."""
    kwargs.setdefault("timeout", 60)
    return httpx.Client(transport=Transport(), **kwargs)


# One client for the whole suite: building an httpx.Client costs ~50 ms (TLS context),
# more than most requests here.
http = client()


FIRST_PORT = 20000
"""Tests' servers listen below the kernel's ephemeral range (32768-60999 by default), so no
outgoing connection's local port and no other process's bind to port 0 can take theirs."""
PORTS_PER_WORKER = 1500
_ports = itertools.count(os.getpid() % PORTS_PER_WORKER)  # two runs at once start apart


def _worker_index() -> int:
    """0 for ``gw0`` (or no xdist), 1 for ``gw1``…: each test process has its own ports."""
    name = os.environ.get("PYTEST_XDIST_WORKER", "")
    return int(name[2:]) % 8 if name.startswith("gw") and name[2:].isdigit() else 0


def free_port() -> int:
    """A port free now that no other test process will be given: this worker's own range,
    taken in turn (a port just given up is not handed out again at once), one still in
    use skipped. Port 0's pick came from the ephemeral range, where a port found free
    could be taken a moment later by any connection's local end, or by another worker:
    a door then found its port busy, and a client whose server restarted on its port
    reached another test's server."""
    base = FIRST_PORT + _worker_index() * PORTS_PER_WORKER
    for _ in range(PORTS_PER_WORKER):
        port = base + next(_ports) % PORTS_PER_WORKER
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise RuntimeError(f"no free port in {base}-{base + PORTS_PER_WORKER - 1}")


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


# -- servers -----------------------------------------------------------------------
class InProcessServer:
    """The real app through Flask's test client: same files, same code, no socket."""

    _numbers = itertools.count()

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.data_dir = settings.data_dir
        self.host = f"app{next(self._numbers)}.inprocess.test"
        self.url = f"http://{self.host}"
        self.services: Services | None = None
        self.app: Flask | None = None

    def start(self) -> InProcessServer:
        self.services = build_services(self.settings)
        self.app = create_app(services=self.services)
        _IN_PROCESS[self.host] = self.app
        return self

    def stop(self) -> None:
        if self.services is not None:
            _IN_PROCESS.pop(self.host, None)
            self.services.close()
            self.services = None


class LiveServer:
    """The real app under Werkzeug's threaded server, in a thread of the test process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.data_dir = settings.data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self.services: Services | None = None
        self.app: Flask | None = None

    def start(self) -> LiveServer:
        self.services = build_services(self.settings)
        self.app = create_app(services=self.services)
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
        assert self.services is not None
        self.services.close()
        self._server.shutdown()
        self._server.server_close()
        assert self._thread is not None
        self._thread.join(timeout=10)
        self._server = None


Server = InProcessServer | LiveServer


class ServerProcess:
    """``pairchat-server`` as users run it (granian unless ``dev``), in a child process.

    Its environment is the test process's plus ``TEST_ENV``, then ``env`` (give
    ``env`` to hold it to the real defaults: ``{"PAIRCHAT_SEND_RATE_LIMIT": ""}``
    unsets one, as an empty variable counts as unset).
    """

    def __init__(
        self,
        data_dir: Path,
        *args: str,
        port: int | None = None,
        env: dict[str, str] | None = None,
        log: Path | None = None,
    ) -> None:
        self.log = log
        """Where its output goes (none kept without it)."""
        self.data_dir = data_dir
        self.args = args
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.extra_env = env or {}
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None, "not started"
        return self.proc.pid

    def worker_pids(self) -> list[int]:
        return children(self.pid)

    def start(self) -> ServerProcess:
        env = {**os.environ, **TEST_ENV, **self.extra_env}
        cmd = [sys.executable, "-m", "backend.server.cli", "serve", "--port", str(self.port)]
        cmd += ["--data-dir", str(self.data_dir), *self.args]
        # A session of its own: granian forks workers, and kill() must reach them all.
        output = open(self.log, "ab") if self.log is not None else subprocess.DEVNULL  # noqa: SIM115
        try:
            self.proc = subprocess.Popen(
                cmd,
                cwd=REPO,
                env=env,
                stdout=output,
                stderr=output,
                start_new_session=True,
            )
        finally:
            if self.log is not None:
                output.close()  # type: ignore[union-attr]
        wait_healthy(self.url)
        return self

    def kill(self) -> None:
        """SIGKILL to the server and its workers: no chance to flush or clean up."""
        if self.proc is not None:
            kill_process(self.proc, group=True)
            self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc, group=True)
            self.proc = None


def kill_process(proc: subprocess.Popen[Any], *, group: bool = False, timeout: float = 10) -> None:
    """SIGKILL ``proc`` (with ``group``: its whole process group) and wait for it."""
    with contextlib.suppress(ProcessLookupError):
        if group:
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            proc.kill()
    proc.wait(timeout=timeout)


def stop_process(
    proc: subprocess.Popen[Any], *, group: bool = False, timeout: float = 10
) -> int | None:
    """SIGTERM ``proc`` and wait up to ``timeout`` s for it, then ``kill_process`` it.

    Returns its exit code when it ended on SIGTERM, None when it had to be killed.
    """
    proc.terminate()
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_process(proc, group=group)
        return None


def children(pid: int) -> list[int]:
    """The child processes of ``pid`` (granian's workers of a server's main process)."""
    found: set[int] = set()
    with contextlib.suppress(FileNotFoundError):
        for task in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(FileNotFoundError):
                text = Path(f"/proc/{pid}/task/{task}/children").read_text()
                found.update(int(child) for child in text.split())
    return sorted(found)


def rss_mib(pid: int) -> float:
    """Resident memory of one process, in MiB (0 when it is gone)."""
    with contextlib.suppress(FileNotFoundError, ProcessLookupError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def alive(pid: int) -> bool:
    """The process exists and has not exited (a zombie waiting to be reaped has)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no procfs: existence is all we can tell
    return stat.rpartition(")")[2].split()[0] != "Z"


def read_connections(port: int) -> dict[int, int]:
    """The server side of each established TCP connection to 127.0.0.1:``port``: the
    client's port -> bytes the server has not read yet (the kernel's ``rx_queue``).

    A connection whose request the server has read has 0 there; one still waiting in
    the listen queue holds its request's bytes. Tests use it as a gate ("these requests
    are in the server's hands") instead of a sleep."""
    found: dict[int, int] = {}
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote, state, queues = fields[1], fields[2], fields[3], fields[4]
        if state != "01" or int(local.split(":")[1], 16) != port:  # 01: ESTABLISHED
            continue
        found[int(remote.split(":")[1], 16)] = int(queues.split(":")[1], 16)
    return found


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


def held_feed_waits(
    url: str, token: str, count: int
) -> tuple[list[threading.Thread], list[object]]:
    """``count`` feed long-polls of ``token`` (55 s each) in threads; their statuses (or
    errors) land in the list as they are answered."""
    cursor = http.get(f"{url}/updates", headers=bearer(token)).json()["cursor"]
    answers: list[object] = []

    def wait() -> None:
        try:
            reply = httpx.get(
                f"{url}/updates",
                params={"since": cursor, "wait": 55},
                headers=bearer(token),
                timeout=70,
            )
            answers.append(reply.status_code)
        except httpx.HTTPError as exc:
            answers.append(repr(exc))

    threads = [threading.Thread(target=wait) for _ in range(count)]
    for thread in threads:
        thread.start()
    return threads, answers


# -- gates: wait on a condition the server reports, never on the clock ---------------------
def until(check: Callable[[], object], what: str, within: float = 30.0) -> None:
    """Poll ``check`` until it is true; past ``within`` s, fail saying ``what`` never came.

    A gate, not a sleep: it returns the moment the condition holds, so a loaded machine
    only makes it slower, never wrong."""
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, f"timed out after {within} s waiting for: {what}"
        time.sleep(0.02)


def metric(metrics_url: str, name: str) -> float:
    """One unlabelled figure of a ``--metrics-port`` scrape (0 when it is not there)."""
    # imported here: prometheus_client picks its value class at first import
    # (backend/server/metrics.py), which is no business of a module every test imports
    from prometheus_client.parser import text_string_to_metric_families

    reply = httpx.get(f"{metrics_url}/metrics", timeout=10)
    assert reply.status_code == 200, reply.text
    for family in text_string_to_metric_families(reply.text):
        for sample in family.samples:
            if sample.name == name and not sample.labels:
                return float(sample.value)
    return 0.0


def held_waits_become(metrics_url: str, count: int) -> None:
    """Wait until the server reports exactly ``count`` long-polls held (parked), all workers.

    The gauge is refreshed every ``GAUGE_PERIOD`` s, so a wait that was just answered may
    still be counted for a moment: gate on the total expected *now* (0 after answers, then
    1 for one more hold), never on "at least"."""
    until(
        lambda: metric(metrics_url, "pairchat_held_waits") == count,
        f"the server to report {count} held waits",
    )


def connections_read(port: int) -> int:
    """How many of *this process's* open connections to 127.0.0.1:``port`` the server has
    read every byte of (its request in the server's hands; ``read_connections``).

    Only this process's sockets count (found through /proc/self/fd), so connections of
    other programs to the same server (a TUI, a door) never satisfy a gate by mistake."""
    own: set[int] = set()
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            target = os.readlink(f"/proc/self/fd/{fd}")
            if target.startswith("socket:["):
                own.add(int(target[8:-1]))
    client_ports: set[int] = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[3] == "01" and int(fields[2].split(":")[1], 16) == port and int(fields[9]) in own:
            client_ports.add(int(fields[1].split(":")[1], 16))
    unread = read_connections(port)
    return sum(1 for client in client_ports if unread.get(client) == 0)
