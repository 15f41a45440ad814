"""Issue 13 (i): wake-ups across processes, Redis pub/sub against PostgreSQL LISTEN/NOTIFY.

Multi-node mode needs a send on one node to wake long-polls held on another
(``backend/wakeups/pubsub.py``). Two carriers were candidates; this measures both on the
same machine, each with a throwaway server of its own (``redis-server`` on a free
port; PostgreSQL 15 made by ``initdb`` with ``fsync=off``), a publisher in this
process and a subscriber in a child process:

- ``Redis PUBLISH``: redis-py ``publish`` -> a ``PubSub.get_message`` loop;
- ``PG NOTIFY``: ``SELECT pg_notify(…)`` in autocommit (psycopg 3) -> ``LISTEN`` and
  ``Connection.notifies()``;
- ``RedisWakeups``: the real path, ``Notifier.notify`` on the publisher (which only
  hands the keys to its publisher thread) -> Redis -> the subscriber's thread ->
  its ``Notifier.notify`` (the time is taken there, after its waiters are woken).

Events go one every millisecond (not a flood: the latency, not the queueing, is
measured); each carries its send time (``time.monotonic_ns``, one clock for all
processes). "publish cost" is the wall time of the publisher's call.

``python -m bench.wakeups [--quick] [--events N]`` runs it alone; ``just bench
--only i`` with the others.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from bench.report import Table, fmt, ms, us
from bench.server import free_port
from bench.settings import Settings

CHANNEL = "pairchat_bench_wake"  # a valid name for both LISTEN and SUBSCRIBE
PG_BIN = Path("/usr/lib/postgresql/15/bin")
GAP = 0.001
"""Seconds between two paced events."""
FLOOD = 8
"""Publisher threads (each its own connection) in the flood runs."""


@dataclass
class Result:
    name: str
    latencies: list[float]  # seconds, publish -> heard by the subscriber
    costs: list[float]  # seconds, the publisher's call
    sent: int
    seconds: float  # wall time of the whole publishing


# -- throwaway servers --------------------------------------------------------------------


def _wait_for(check: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not start")
        time.sleep(0.05)


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@contextlib.contextmanager
def redis_server(workdir: Path) -> Iterator[str]:
    """A ``redis-server`` on a free 127.0.0.1 port, no persistence; yields its URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed (apt-get install -y redis-server)")
    port = free_port()
    cmd = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly"]
    cmd += ["no", "--daemonize", "no", "--dir", str(workdir), "--logfile", ""]
    workdir.mkdir(parents=True, exist_ok=True)
    with (workdir / "redis.log").open("ab") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_for(lambda: _answers(port), "redis-server")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.kill()
        proc.wait(timeout=10)


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """A throwaway PostgreSQL 15 (``fsync=off``) on a free 127.0.0.1 port; yields its URL.

    As root it runs as the ``postgres`` user (``runuser``), in a folder of its own
    (the bench's folder is private to root).
    """
    if not (PG_BIN / "initdb").exists():
        raise RuntimeError(f"PostgreSQL 15 is not installed ({PG_BIN}/initdb)")
    as_root = os.geteuid() == 0
    prefix = ["runuser", "-u", "postgres", "--"] if as_root else []
    home = Path(tempfile.mkdtemp(prefix="pairchat-bench-pg-"))
    if as_root:
        user = pwd.getpwnam("postgres")
        os.chown(home, user.pw_uid, user.pw_gid)
    data = home / "data"
    port = free_port()
    proc: subprocess.Popen[bytes] | None = None
    try:
        initdb = [str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust"]
        subprocess.run([*prefix, *initdb, "--no-sync"], check=True, capture_output=True)
        server = [str(PG_BIN / "postgres"), "-D", str(data), "-p", str(port)]
        server += ["-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={home}"]
        server += ["-c", "fsync=off", "-c", "synchronous_commit=off"]
        server += ["-c", "full_page_writes=off"]
        with (home / "postgres.log").open("ab") as log:
            proc = subprocess.Popen([*prefix, *server], stdout=log, stderr=subprocess.STDOUT)
        url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
        _wait_for(lambda: _pg_answers(url), "PostgreSQL")
        yield url
    finally:
        if proc is not None:
            _stop_postgres(data, proc)
        shutil.rmtree(home, ignore_errors=True)


def _pg_answers(url: str) -> bool:
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=2):
            return True
    except psycopg.OperationalError:
        return False


def _stop_postgres(data: Path, proc: subprocess.Popen[bytes]) -> None:
    """SIGINT to the postmaster we started (fast shutdown), then wait for ``runuser``."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        postmaster = int((data / "postmaster.pid").read_text().split()[0])
        os.kill(postmaster, 2)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


# -- the subscriber (a child process) ----------------------------------------------------


def subscribe(kind: str, url: str, events: int, timeout: float) -> None:
    """Print ``ready``, then one JSON line: the latencies (ns) of the events heard."""
    heard: list[int] = []
    deadline = time.monotonic() + timeout

    def ready() -> None:
        print("ready", flush=True)

    if kind == "redis":
        import redis

        pubsub = redis.Redis.from_url(url).pubsub(ignore_subscribe_messages=True)
        pubsub.subscribe(CHANNEL)
        while pubsub.get_message(timeout=0.01) is None and not pubsub.subscribed:
            pass
        ready()
        while len(heard) < events and time.monotonic() < deadline:
            message = pubsub.get_message(timeout=0.5)
            if message is not None:
                heard.append(time.monotonic_ns() - int(message["data"]))
    elif kind == "pg":
        import psycopg

        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"LISTEN {CHANNEL}")
            ready()
            while len(heard) < events and time.monotonic() < deadline:
                for notice in conn.notifies(timeout=0.5):
                    heard.append(time.monotonic_ns() - int(notice.payload))
                    if len(heard) >= events:
                        break
    elif kind == "wakeups":
        from backend.wakeups.notify import Notifier
        from backend.wakeups.pubsub import RedisWakeups

        class Recording(Notifier):
            def notify(self, keys: Iterable[str], forward: bool = True) -> None:
                keys = list(keys)
                super().notify(keys, forward)
                now = time.monotonic_ns()
                heard.extend(now - int(k[2:]) for k in keys if k.startswith("t:"))

        wakeups = RedisWakeups(url, Recording(), "bench-sub").start()
        if not wakeups.wait_ready(10):
            raise SystemExit("the subscriber could not subscribe")
        ready()
        while len(heard) < events and time.monotonic() < deadline:
            time.sleep(0.01)
        wakeups.close()
    print(json.dumps(heard), flush=True)


# -- the publisher (this process) ----------------------------------------------------------


def measure(name: str, kind: str, url: str, events: int, threads: int = 0) -> Result:
    """Paced events from one thread, or with ``threads`` a flood from that many at once."""
    if threads:
        events -= events % threads  # as many from each thread
    cmd = [sys.executable, "-m", "bench.wakeups", "--subscribe", kind, "--url", url]
    cmd += ["--events", str(events)]
    root = Path(__file__).resolve().parent.parent
    sub = subprocess.Popen(cmd, cwd=root, stdout=subprocess.PIPE, text=True)
    try:
        assert sub.stdout is not None
        if sub.stdout.readline().strip() != "ready":
            raise RuntimeError(f"the {kind} subscriber did not start")
        costs: list[float] = []
        spans: list[tuple[float, float]] = []
        # Redis and PostgreSQL: a connection per thread. RedisWakeups: one per process,
        # shared by its request threads, as in the server.
        shared = _publisher(kind, url) if kind == "wakeups" else None
        try:
            if threads:
                each = events // threads
                args = (kind, url, each, 0.0, costs, spans, shared)
                flood = [threading.Thread(target=_publish, args=args) for _ in range(threads)]
                for thread in flood:
                    thread.start()
                for thread in flood:
                    thread.join()
            else:
                _publish(kind, url, events, GAP, costs, spans, shared)
        finally:
            if shared is not None:
                shared[1]()
        seconds = max(end for _, end in spans) - min(start for start, _ in spans)
        heard = json.loads(sub.stdout.readline() or "[]")
        sub.wait(timeout=30)
    finally:
        if sub.poll() is None:
            sub.kill()
            sub.wait(timeout=10)
    return Result(name, [ns / 1e9 for ns in heard], costs, events, seconds)


Publisher = tuple[Callable[[str], None], Callable[[], None]]


def _publish(
    kind: str,
    url: str,
    events: int,
    gap: float,
    costs: list[float],
    spans: list[tuple[float, float]],
    shared: Publisher | None,
) -> None:
    publish, close = shared or _publisher(kind, url)
    mine = []
    began = time.perf_counter()
    try:
        for _ in range(events):
            started = time.perf_counter()
            publish(str(time.monotonic_ns()))
            mine.append(time.perf_counter() - started)
            if gap:
                time.sleep(gap)
    finally:
        spans.append((began, time.perf_counter()))
        if shared is None:
            close()
    costs.extend(mine)


def _publisher(kind: str, url: str) -> Publisher:
    if kind == "redis":
        import redis

        client = redis.Redis.from_url(url)

        def publish(stamp: str) -> None:
            client.publish(CHANNEL, stamp)

        return publish, client.close
    if kind == "pg":
        import psycopg

        conn = psycopg.connect(url, autocommit=True)

        def notify(stamp: str) -> None:
            conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, stamp))

        return notify, conn.close
    from backend.wakeups.notify import Notifier
    from backend.wakeups.pubsub import RedisWakeups

    notifier = Notifier()
    wakeups = RedisWakeups(url, notifier, "bench-pub").start()
    if not wakeups.wait_ready(10):
        raise RuntimeError("the publisher could not reach Redis")

    def close() -> None:
        time.sleep(0.2)  # let its publisher thread send the last keys
        wakeups.close()

    return lambda stamp: notifier.notify([f"t:{stamp}"]), close


# -- the table -----------------------------------------------------------------------------


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def table(results: list[Result]) -> Table:
    columns = ["carrier", "heard", "events/s", "p50", "p99", "max", "publish p50", "publish p99"]
    out = Table("(i) Wake-ups across processes: Redis pub/sub vs PostgreSQL NOTIFY", columns)
    for r in results:
        out.add(
            r.name,
            f"{len(r.latencies)}/{r.sent}",
            fmt(r.sent / r.seconds),
            ms(percentile(r.latencies, 0.5)),
            ms(percentile(r.latencies, 0.99)),
            ms(max(r.latencies, default=float("nan"))),
            us(percentile(r.costs, 0.5)),
            us(percentile(r.costs, 0.99)),
        )
    out.note(f"paced: one event every {GAP * 1000:g} ms; publisher, subscriber in two processes")
    out.note(f"flood x{FLOOD}: {FLOOD} publisher threads as fast as they can (queueing included)")
    out.note("RedisWakeups: Notifier.notify -> publisher thread -> Redis -> subscriber's notify")
    return out


def measure_all(workdir: Path, events: int) -> Table:
    results = []
    with redis_server(workdir / "redis") as url:
        results.append(measure("Redis PUBLISH", "redis", url, events))
        results.append(measure("RedisWakeups", "wakeups", url, events))
        results.append(measure(f"Redis PUBLISH flood x{FLOOD}", "redis", url, events, FLOOD))
        results.append(measure(f"RedisWakeups flood x{FLOOD}", "wakeups", url, events, FLOOD))
    with postgres_server() as url:
        results.append(measure("PG NOTIFY", "pg", url, events))
        results.append(measure(f"PG NOTIFY flood x{FLOOD}", "pg", url, events, FLOOD))
    return table(results)


async def run(settings: Settings) -> Table:
    events = settings.count(2000, 300)
    return await asyncio.to_thread(measure_all, settings.workdir / "wakeups", events)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.wakeups", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="300 events instead of 2,000")
    parser.add_argument("--events", type=int, help="events per carrier")
    parser.add_argument("--subscribe", choices=["redis", "pg", "wakeups"], help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.subscribe:
        subscribe(args.subscribe, args.url, args.events, timeout=120)
        return
    events = args.events or (300 if args.quick else 2000)
    with tempfile.TemporaryDirectory(prefix="pairchat-bench-") as workdir:
        print(measure_all(Path(workdir), events).render())


if __name__ == "__main__":
    main()
