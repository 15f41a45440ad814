"""Prometheus metrics: ``pairchat-server serve --metrics-port N`` serves ``GET /metrics``.

Off the public API, on an address and port of its own (``--metrics-host``, loopback
by default): the figures say who is online and how busy the server is, which is no
one's business on the internet, and a port of its own needs no token to manage -
Prometheus on the same machine (or through an SSH tunnel, a private network)
scrapes it, the public port never answers ``/metrics`` (it is no route of the API).

Granian runs the API in worker processes, so the figures are kept in
``prometheus_client``'s multiprocess mode: each worker writes its counters into
memory-mapped files in a folder private to this server run (``start``), and the
main process - which does nothing else - answers each scrape by summing them
(``MultiProcessCollector``), adding what only it knows (the data folder's size,
free disk, its start time). Held waits, open streams and open pair files are gauges
each worker refreshes every ``GAUGE_PERIOD`` s (not on every wait: a send wakes
thousands).

``PROMETHEUS_MULTIPROC_DIR`` must be set before ``prometheus_client`` is first
imported (it picks its value class then): ``backend.server.cli`` sets it
(``metrics_folder``) before it imports the front, which imports this module.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import re
import shutil
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    make_wsgi_app,
)
from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector

from backend.storage.accounts_db import PgAccountsDb

GAUGE_PERIOD = 1.0  # seconds between a worker's refreshes of its held waits and streams
SEND_ENDPOINT = "conversations.send_message"
ROUTE_CACHE = 4096  # (method, path) -> route remembered by a worker

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


REQUESTS = Counter(
    "pairchat_http_requests",
    "HTTP requests answered, by route (the API's rule), method and status.",
    ["route", "method", "status"],
)
LATENCY = Histogram(
    "pairchat_http_request_duration_seconds",
    "Time from a request's arrival to its reply sent (a long-poll's includes its wait; "
    "an event stream's is to its opening).",
    ["route"],
    buckets=BUCKETS,
)
MESSAGES = Counter("pairchat_messages_sent", "Messages sent (POST /send_message answered 2xx).")
REFUSALS = Counter(
    "pairchat_rate_limit_refusals",
    "Requests refused by a rate limit (429), by the limited route's endpoint.",
    ["limit"],
)
HELD_WAITS = Gauge(
    "pairchat_held_waits",
    "Long-polls held right now, all workers.",
    multiprocess_mode="livesum",
)
OPEN_STREAMS = Gauge(
    "pairchat_open_streams",
    "Event streams (GET /events) open right now, all workers.",
    multiprocess_mode="livesum",
)

WAKEUP_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
WAKEUP_LATENCY = Histogram(
    "pairchat_wakeup_latency_seconds",
    "From a change's commit (a send, an edit, a read, typing) to each held long-poll or "
    "event stream it woke running again, in the worker that holds it (across workers "
    "within one feed-watcher look, ~25 ms, more; across nodes, by the nodes' clocks).",
    buckets=WAKEUP_BUCKETS,
)

PASSWORD_CHECKS_RUNNING = Gauge(
    "pairchat_password_checks_running",
    "Password checks (argon2) running now, all workers (each at most PAIRCHAT_HASH_CONCURRENCY).",
    multiprocess_mode="livesum",
)
PASSWORD_CHECKS_QUEUED = Gauge(
    "pairchat_password_checks_queued",
    "Password checks waiting for a slot now, all workers (past PAIRCHAT_HASH_QUEUE: 429).",
    multiprocess_mode="livesum",
)

POSTGRES_ERRORS = Counter(
    "pairchat_postgres_errors",
    "Multi-node mode: PostgreSQL failures that reached a request (unreachable, full, busy "
    "past the retries), by operation (read, write, snapshot, statement).",
    ["operation"],
)
REDIS_ERRORS = Counter(
    "pairchat_redis_errors",
    "Multi-node mode: Redis failures caught, by what failed (publish: wake-ups for other "
    "nodes dropped; subscribe: a (re)subscription attempt; send: a placement message).",
    ["what"],
)
REDIS_RECONNECTS = Counter(
    "pairchat_redis_reconnects",
    "Multi-node mode: Redis back after a failure, by link (publish, subscribe: every "
    "waiter then runs its query again).",
    ["what"],
)

OPEN_PAIR_FILES = Gauge(
    "pairchat_open_pair_files",
    "Conversation files held open right now, all workers (each keeps at most "
    "PAIRCHAT_MAX_OPEN_CONVERSATIONS).",
    multiprocess_mode="livesum",
)


class RequestMetrics:
    """A worker's recorder: one call per answered request (on the event loop)."""

    def __init__(self, app: Any, services: Any = None) -> None:
        self._routes = app.url_map.bind("localhost")
        if services is not None:
            # each woken waiter: one observe on its loop (backend/wakeups/notify.py)
            services.notifier.woken = WAKEUP_LATENCY.observe
            # each password check that starts, waits or ends (backend/limits/hash_gate.py)
            services.accounts.gate.on_change = _password_checks
            if services.wakeups is not None:  # multi-node mode: Redis and PostgreSQL
                services.wakeups.on_trouble = _redis_trouble
                PgAccountsDb.on_error = _postgres_error
        # What the send path would otherwise pay on every request (it is measured: issue
        # 23 asks <= 5 %): werkzeug's route match and prometheus_client's label lookups.
        self._matched: dict[tuple[str, str], tuple[str, str]] = {}
        self._counters: dict[tuple[str, str, int], Any] = {}
        self._latencies: dict[str, Any] = {}

    def route(self, method: str, path: str) -> tuple[str, str]:
        """(rule, endpoint) of the request, ("other", "") when no route matches."""
        key = (method, path)
        found = self._matched.get(key)
        if found is None:
            try:
                rule, _ = self._routes.match(path, method, return_rule=True)
                found = (rule.rule, rule.endpoint or "")
            except Exception:  # werkzeug's NotFound, MethodNotAllowed, RequestRedirect
                found = ("other", "")
            if len(self._matched) >= ROUTE_CACHE:  # paths name users: keep it bounded
                self._matched.clear()
            self._matched[key] = found
        return found

    def answered(self, method: str, path: str, status: int, started: float) -> None:
        rule, endpoint = self.route(method, path)
        counter = self._counters.get((rule, method, status))
        if counter is None:
            counter = self._counters[rule, method, status] = REQUESTS.labels(
                rule, method, str(status)
            )
        counter.inc()
        latency = self._latencies.get(rule)
        if latency is None:
            latency = self._latencies[rule] = LATENCY.labels(rule)
        latency.observe(time.monotonic() - started)
        if status == 429:
            REFUSALS.labels(endpoint or rule).inc()
        elif endpoint == SEND_ENDPOINT and 200 <= status < 300:
            MESSAGES.inc()

    @staticmethod
    def held(waits: int, streams: int, pair_files: int) -> None:
        HELD_WAITS.set(waits)
        OPEN_STREAMS.set(streams)
        OPEN_PAIR_FILES.set(pair_files)


def _redis_trouble(event: str, what: str) -> None:
    (REDIS_ERRORS if event == "error" else REDIS_RECONNECTS).labels(what).inc()


def _postgres_error(operation: str) -> None:
    POSTGRES_ERRORS.labels(operation).inc()


def _password_checks(running: int, queued: int) -> None:
    PASSWORD_CHECKS_RUNNING.set(running)
    PASSWORD_CHECKS_QUEUED.set(queued)


# -- what the main process serves --------------------------------------------------------
@dataclass(eq=False)
class ServerFacts(Collector):
    """What only the main process knows, read at each scrape."""

    data_dir: Path
    workers: int
    version: str
    started: float
    held_capacity: int = 0  # streams and long-polls all workers may hold (--max-waiters each)
    recent: RecentMessages | None = field(default=None)
    doors: list[tuple[str, Any, float]] = field(default_factory=list)
    """(kind, process, when it started) of each door this server started."""

    def door_started(self, kind: str, process: Any, when: float) -> None:
        """A door's process started (``backend/server/door_processes.py``)."""
        self.doors.append((kind, process, when))

    def collect(self) -> Iterator[Any]:
        info = InfoMetricFamily("pairchat_server", "The running server.")
        info.add_metric([], {"version": self.version})
        yield info
        yield GaugeMetricFamily(
            "pairchat_start_time_seconds", "When the server started (Unix time).", self.started
        )
        yield GaugeMetricFamily("pairchat_workers", "Worker processes configured.", self.workers)
        yield GaugeMetricFamily(
            "pairchat_held_capacity",
            "Streams and long-polls all workers may hold at once (past it: 503 / early answers).",
            self.held_capacity,
        )
        with contextlib.suppress(OSError):
            usage = shutil.disk_usage(self.data_dir)
            yield GaugeMetricFamily(
                "pairchat_disk_free_bytes", "Free space on the data folder's disk.", usage.free
            )
        yield GaugeMetricFamily(
            "pairchat_data_folder_bytes",
            "Bytes in the data folder's files (conversations, accounts, their journals).",
            _folder_bytes(self.data_dir),
        )
        yield GaugeMetricFamily(
            "pairchat_pair_files",
            "Conversation files in the data folder.",
            _pair_files(self.data_dir),
        )
        if self.doors:
            doors = GaugeMetricFamily(
                "pairchat_door_start_time_seconds",
                "When each door's process started (Unix time); gone while it is not running.",
                labels=["door"],
            )
            for kind, process, when in self.doors:
                if process.poll() is None:
                    doors.add_metric([kind], when)
            yield doors
        if self.recent is not None:
            recent = GaugeMetricFamily(
                "pairchat_messages_sent_recent",
                "Messages sent in the last minute / hour (for `pairchat-server status`; "
                "in PromQL use increase(pairchat_messages_sent_total[...]).",
                labels=["window"],
            )
            last_minute, last_hour = self.recent.counts()
            recent.add_metric(["1m"], last_minute)
            recent.add_metric(["1h"], last_hour)
            yield recent


class RecentMessages:
    """The messages counter sampled every ``period`` s for an hour, in the main process:
    how many were sent in the last minute and hour (``period`` s resolution)."""

    def __init__(self, folder: Path, period: float = 10.0) -> None:
        self.folder = folder
        self.period = period
        self._samples: deque[tuple[float, float]] = deque([(time.monotonic(), 0.0)])
        self._lock = threading.Lock()
        threading.Thread(target=self._sample, name="metrics-recent", daemon=True).start()

    def total(self) -> float:
        files = glob.glob(os.path.join(self.folder, "counter_*.db"))
        found = 0.0
        for metric in MultiProcessCollector.merge(files, accumulate=True):
            if metric.name == "pairchat_messages_sent":
                found += sum(sample.value for sample in metric.samples)
        return found

    def _sample(self) -> None:
        while True:
            time.sleep(self.period)
            with contextlib.suppress(OSError, ValueError):
                now = (time.monotonic(), self.total())
                with self._lock:
                    self._samples.append(now)
                    while self._samples and now[0] - self._samples[0][0] > 3600 + self.period:
                        self._samples.popleft()

    def counts(self) -> tuple[float, float]:
        total = self.total()
        now = time.monotonic()
        with self._lock:
            samples = list(self._samples)
        return total - _at(samples, now - 60), total - _at(samples, now - 3600)


def _at(samples: list[tuple[float, float]], when: float) -> float:
    """The counter's value at ``when``: its newest sample not after it (else the oldest)."""
    value = samples[0][1]
    for moment, total in samples:
        if moment > when:
            break
        value = total
    return value


def _folder_bytes(folder: Path) -> int:
    total = 0
    with contextlib.suppress(OSError), os.scandir(folder) as entries:
        for entry in entries:
            with contextlib.suppress(OSError):
                if entry.is_file(follow_symlinks=False):
                    total += entry.stat(follow_symlinks=False).st_size
    return total


def _pair_files(folder: Path) -> int:
    with contextlib.suppress(OSError), os.scandir(folder) as entries:
        return sum(1 for entry in entries if _PAIR_FILE.fullmatch(entry.name))
    return 0


_PAIR_FILE = re.compile(r"[^_].*_.*\.db")
_LIVE_FILE = re.compile(r"gauge_live\w*?_(\d+)\.db")


class _Live(MultiProcessCollector):
    """The workers' files, less the live gauges of workers that are gone (a respawn)."""

    def __init__(self, registry: CollectorRegistry, folder: Path) -> None:
        self.folder = folder
        super().__init__(registry, path=str(folder))

    def collect(self) -> Any:
        for name in os.listdir(self.folder):
            found = _LIVE_FILE.fullmatch(name)
            if found and not _alive(int(found.group(1))):
                mark_process_dead(int(found.group(1)), str(self.folder))
        return super().collect()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def serve(
    host: str,
    port: int,
    folder: Path,
    facts: ServerFacts,
    errors: Callable[[], list[dict[str, Any]]] = list,
) -> Any:
    """``GET /metrics`` on ``host:port`` from a thread of the main process, and ``GET
    /errors``: ``errors()``, every process's last error lines (``backend/server/logs.py``),
    as JSON; its server."""
    registry = CollectorRegistry()
    _Live(registry, folder)
    registry.register(facts)
    scrape = make_wsgi_app(registry)

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        if environ.get("PATH_INFO") == "/errors":
            body = json.dumps({"errors": errors()}).encode("utf-8")
            start_response(
                "200 OK",
                [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
            )
            return [body]
        result: list[bytes] = scrape(environ, start_response)
        return result

    family, *_, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]

    class Server(ThreadingMixIn, WSGIServer):
        daemon_threads = True
        address_family = family

    server = make_server(str(address[0]), port, app, Server, handler_class=_Quiet)
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    return server


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes are not logged."""


def finish(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
