"""Issue 11 (f): the red team's attacks, measured against the real server with its defaults.

Each row runs one attack against its own ``pairchat-server`` (granian + the ASGI
front, default limits, argon2 at full cost where hashing is the attack) and
reports the figure the issue gave before the fix next to the figure now, with
the issue's target where it states one. ``tests/test_abuse.py`` proves the same
behaviours hold; this measures them.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sqlite3
import statistics
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx

from bench.report import Table, Target, fmt
from bench.server import Server, _children, _rss_kib
from bench.settings import Settings

PASSWORD = "correct horse"
REAL_ARGON2 = {"PAIRCHAT_ARGON2_TIME_COST": "", "PAIRCHAT_ARGON2_MEMORY_COST": ""}


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _register(url: str, name: str, headers: dict[str, str] | None = None) -> str:
    reply = httpx.post(
        f"{url}/register", data={"username": name, "password": PASSWORD}, headers=headers or {}
    )
    reply.raise_for_status()
    token: str = reply.json()["token"]
    return token


def _login(url: str, name: str, password: str, address: str) -> httpx.Response:
    return httpx.post(
        f"{url}/login",
        data={"username": name, "password": password},
        headers={"X-Forwarded-For": address},
        timeout=60,
    )


@contextlib.contextmanager
def _server(settings: Settings, name: str, *args: str, **env: str) -> Iterator[Server]:
    with Server(settings.data_dir(name), open_mode=False, args=args, env=env) as server:
        yield server


class _PeakRss:
    """The highest resident memory of a server's workers (MiB) while the block runs."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            total = sum(_rss_kib(pid) for pid in self.server.worker_pids()) / 1024
            self.peak = max(self.peak, total)
            time.sleep(0.02)

    def __enter__(self) -> _PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


# -- the attacks ------------------------------------------------------------------------
def idle_connections(settings: Settings, count: int) -> tuple[float, float]:
    """(worst /healthz seconds, feed delivery seconds) with ``count`` idle + 400 slow clients."""
    with _server(settings, "idle") as server:
        alice, bob = _register(server.url, "alice"), _register(server.url, "bob")
        held: list[socket.socket] = []
        try:
            for _ in range(count):
                held.append(socket.create_connection((server.host, server.port)))
            for n in range(400):
                sock = socket.create_connection((server.host, server.port))
                sock.sendall(
                    b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: "
                    if n % 2
                    else b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Length: 900\r\n\r\nuser"
                )
                held.append(sock)
            worst = 0.0
            for _ in range(5):
                started = time.monotonic()
                httpx.get(f"{server.url}/healthz", timeout=30).raise_for_status()
                worst = max(worst, time.monotonic() - started)
            cursor = httpx.get(f"{server.url}/updates", headers=_bearer(alice)).json()["cursor"]
            with ThreadPoolExecutor(1) as pool:
                waiting = pool.submit(
                    httpx.get,
                    f"{server.url}/updates",
                    params={"since": cursor, "wait": 20},
                    headers=_bearer(alice),
                    timeout=30,
                )
                time.sleep(0.3)
                sent = time.monotonic()
                httpx.post(
                    f"{server.url}/send_message/alice",
                    data={"author": "bob", "message": "hi"},
                    headers=_bearer(bob),
                ).raise_for_status()
                waiting.result()
                delivered = time.monotonic() - sent
        finally:
            for sock in held:
                sock.close()
    return worst, delivered


def one_user_many_waits(settings: Settings, waits: int) -> tuple[int, float]:
    """(the flooder's waits still held, another user's delivery seconds)."""
    with _server(settings, "waits") as server:
        mallory, alice, bob = (_register(server.url, n) for n in ("mallory", "alice", "bob"))
        cursor = httpx.get(f"{server.url}/updates", headers=_bearer(mallory)).json()["cursor"]
        floods = []
        for _ in range(waits):
            sock = socket.create_connection((server.host, server.port))
            sock.sendall(
                f"GET /updates?since={cursor}&wait=50 HTTP/1.1\r\nHost: x\r\n"
                f"Authorization: Bearer {mallory}\r\n\r\n".encode()
            )
            floods.append(sock)
        try:
            held = floods
            deadline = time.monotonic() + 30
            while len(held) > 4 and time.monotonic() < deadline:
                still = []
                for sock in held:
                    sock.settimeout(0.01)
                    try:
                        sock.recv(1)
                    except TimeoutError:
                        still.append(sock)
                held = still
            alice_cursor = httpx.get(f"{server.url}/updates", headers=_bearer(alice)).json()[
                "cursor"
            ]
            with ThreadPoolExecutor(1) as pool:
                waiting = pool.submit(
                    httpx.get,
                    f"{server.url}/updates",
                    params={"since": alice_cursor, "wait": 30},
                    headers=_bearer(alice),
                    timeout=40,
                )
                time.sleep(1.0)
                sent = time.monotonic()
                httpx.post(
                    f"{server.url}/send_message/alice",
                    data={"author": "bob", "message": "live"},
                    headers=_bearer(bob),
                ).raise_for_status()
                changed = waiting.result().json()["changed"]
                delivered = time.monotonic() - sent if changed else float("nan")
        finally:
            for sock in floods:
                sock.close()
    return len(held), delivered


def password_flood(settings: Settings, kind: str) -> tuple[float, float]:
    """(peak worker RSS MiB, a real login's seconds) under 48 concurrent argon2 checks."""
    env = {
        **REAL_ARGON2,
        "PAIRCHAT_REGISTER_RATE_LIMIT": "1000 per minute",
        "PAIRCHAT_LOGIN_RATE_LIMIT": "1000 per minute",
    }
    with _server(settings, f"hash-{kind}", "--trusted-proxies", "1", **env) as server:
        _register(server.url, "bob")

        def attack(n: int) -> int:
            if kind == "register":
                return httpx.post(
                    f"{server.url}/register",
                    data={"username": f"flood{n}", "password": PASSWORD},
                    headers={"X-Forwarded-For": "203.0.113.66"},
                    timeout=60,
                ).status_code
            return _login(server.url, "bob", f"guess {n}", "203.0.113.66").status_code

        with _PeakRss(server) as rss, ThreadPoolExecutor(48) as pool:
            replies = [pool.submit(attack, n) for n in range(48)]
            time.sleep(0.2)
            started = time.monotonic()
            real = _login(server.url, "bob", PASSWORD, "198.51.100.20")
            took = time.monotonic() - started
            for reply in replies:
                reply.result()
        return rss.peak, took if real.status_code == 200 else float("nan")


def guesses(settings: Settings) -> tuple[int, int]:
    """(password checks made by 60 parallel guesses, bob's status from another address)."""
    with _server(settings, "guesses", "--trusted-proxies", "1") as server:
        _register(server.url, "bob")
        with ThreadPoolExecutor(60) as pool:
            statuses = Counter(
                pool.map(
                    lambda n: _login(server.url, "bob", f"g{n}", "203.0.113.5").status_code,
                    range(60),
                )
            )
        elsewhere = _login(server.url, "bob", PASSWORD, "198.51.100.3").status_code
    return statuses[401], elsewhere


def friends_list(settings: Settings, contacts: int) -> float:
    """Median seconds of ``GET /friends`` with ``contacts`` conversations."""
    folder = settings.data_dir("friends")
    from backend.core.settings import Settings as ServerSettings
    from backend.core.usernames import Username
    from backend.services.wiring import build_services
    from backend.storage.accounts import LastMessage

    with build_services(
        ServerSettings(
            data_dir=folder, watch_interval=0, argon2_time_cost=1, argon2_memory_cost=1024
        )
    ) as services:
        services.accounts.register(Username("alice"), PASSWORD)
        for n in range(contacts):
            services.account_store.add_user(f"peer{n}", None, "x", 0)
            services.account_store.record_message(
                f"peer{n}",
                "alice",
                LastMessage(1, f"peer{n}", f"hello {n}", 1_700_000_000 + n, None),
            )
    with Server(folder, open_mode=False, env={}) as server:
        token = httpx.post(
            f"{server.url}/login", data={"username": "alice", "password": PASSWORD}
        ).json()["token"]
        times = []
        with httpx.Client() as http:
            for _ in range(9):
                started = time.monotonic()
                http.get(f"{server.url}/friends", headers=_bearer(token)).raise_for_status()
                times.append(time.monotonic() - started)
    return statistics.median(times)


def whole_history(settings: Settings, count: int) -> tuple[float, float]:
    """(reply MB, worker RSS growth MiB) for the seed's whole-history request."""
    folder = settings.data_dir("history-stream")
    from backend.core.settings import Settings as ServerSettings
    from backend.services.wiring import build_services

    with build_services(ServerSettings(data_dir=folder, watch_interval=0)) as services:
        conversation = services.conversations.get("alice", "bob", create=True)
        assert conversation is not None
        conversation.initialise_table()
    conn = sqlite3.connect(folder / "alice_bob.db")
    with conn:
        conn.executemany(
            "INSERT INTO conversation (author, message, date_sent) VALUES (?, ?, ?)",
            (("alice", "x" * 4000, 1_700_000_000 + n) for n in range(count)),
        )
    conn.close()
    with Server(folder, open_mode=True, env={}) as server:
        baseline = sum(_rss_kib(pid) for pid in server.worker_pids()) / 1024
        size = 0
        with (
            _PeakRss(server) as rss,
            httpx.stream(
                "POST",
                f"{server.url}/get_message_history",
                data={"user_one": "alice", "user_two": "bob"},
                timeout=300,
            ) as reply,
        ):
            for chunk in reply.iter_bytes():
                size += len(chunk)
    return size / 1e6, rss.peak - baseline


def stop_with_waits(settings: Settings) -> float:
    """Seconds from SIGTERM to every process gone, with 40 long-polls held on 2 workers."""
    with _server(settings, "stop", "--workers", "2") as server:
        tokens = [_register(server.url, f"user{n}") for n in range(10)]
        threads = []
        for token in tokens:
            cursor = httpx.get(f"{server.url}/updates", headers=_bearer(token)).json()["cursor"]
            for _ in range(4):
                thread = threading.Thread(
                    target=lambda t=token, c=cursor: httpx.get(
                        f"{server.url}/updates",
                        params={"since": c, "wait": 55},
                        headers=_bearer(t),
                        timeout=70,
                    )
                )
                thread.start()
                threads.append(thread)
        time.sleep(1.0)
        workers = _children(server.pid)
        assert server.proc is not None
        started = time.monotonic()
        os.kill(server.pid, signal.SIGTERM)
        while server.proc.poll() is None or any(_alive(pid) for pid in workers):
            if time.monotonic() - started > 70:
                break
            time.sleep(0.01)
        took = time.monotonic() - started
        for thread in threads:
            thread.join(timeout=10)
    return took


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def spam(settings: Settings, targets: int) -> tuple[int, int]:
    """(first messages to strangers accepted, sends accepted in a burst of 200)."""
    with _server(settings, "spam", PAIRCHAT_REGISTER_RATE_LIMIT="1000 per minute") as server:
        spammer = _register(server.url, "spammer")
        names = [f"user{n}" for n in range(targets)]
        for name in names:
            _register(server.url, name)

        def send(to: str, text: str) -> int:
            return httpx.post(
                f"{server.url}/send_message/{to}",
                data={"author": "spammer", "message": text},
                headers=_bearer(spammer),
            ).status_code

        firsts = sum(send(name, "buy now") == 200 for name in names)
        burst = sum(send("user0", f"x{n}") == 200 for n in range(200))
    return firsts, burst


# -- the table ------------------------------------------------------------------------------
async def run(settings: Settings) -> Table:
    table = Table(
        "(f) Abuse: the red team's attacks, before and now",
        ["attack", "before (issue 11)", "now", "target", "result"],
    )
    connections = settings.count(10_000, 2_000)

    worst, delivered = await asyncio.to_thread(idle_connections, settings, connections)
    table.check(
        f"{connections:,} idle + 400 slow-header/body connections: worst /healthz",
        "unreachable at ~1,150",
        f"{worst * 1000:.0f} ms (a feed wait woken in {delivered * 1000:.0f} ms)",
        label="/healthz under a connection flood",
        value=worst,
        target=Target("<=", 1.0, " s"),
    )
    held, other = await asyncio.to_thread(one_user_many_waits, settings, 1_100)
    table.check(
        "one token opens 1,100 long-polls: its waits held / another user's delivery",
        "all ~1,040 slots; others answered at once",
        f"{held} held; delivered in {other * 1000:.0f} ms",
        label="long-polls one user can hold",
        value=held,
        target=Target("<=", 4),
    )
    for kind in ("register", "login"):
        peak, took = await asyncio.to_thread(password_flood, settings, kind)
        table.check(
            f"48 concurrent {kind}s (argon2 64 MiB): peak worker RSS",
            "3 GB (48 x 62 MiB)",
            f"{peak:.0f} MiB",
            label=f"RSS under 48 {kind}s",
            value=peak,
            target=Target("<=", 500, " MiB"),
        )
        table.check(
            f"48 concurrent {kind}s: a real login from elsewhere",
            "6-8 s (0.25 s idle)",
            f"{took:.2f} s",
            label=f"real login during 48 {kind}s",
            value=took,
            target=Target("<=", 2.0, " s"),
        )
    checks, elsewhere = await asyncio.to_thread(guesses, settings)
    table.check(
        "60 parallel wrong logins (limit 10/min): password checks made",
        "60",
        str(checks),
        label="password checks for 60 parallel guesses",
        value=checks,
        target=Target("<=", 10),
    )
    table.add(
        "after 10 bad tries for bob from one address: bob from another",
        "429",
        str(elsewhere),
    )
    firsts, burst = await asyncio.to_thread(spam, settings, settings.count(60, 30))
    table.add(
        f"one account writes to {settings.count(60, 30)} strangers / sends 200 at once",
        "267 accounts in 0.9 s / 4.5 MB/s",
        f"{firsts} accepted (20/h) / {burst} accepted (120/min)",
    )
    contacts = settings.count(3_000, 1_000)
    took = await asyncio.to_thread(friends_list, settings, contacts)
    table.check(
        f"/friends with {contacts:,} contacts (median)",
        "3 s",
        f"{took * 1000:.0f} ms",
        label="/friends with many contacts",
        value=took,
        target=Target("<=", 0.050, " s"),
    )
    count = settings.count(15_000, 3_000)
    size, growth = await asyncio.to_thread(whole_history, settings, count)
    table.add(
        f"whole history without limit ({count:,} x 4,000 chars): worker memory",
        "192 MB reply, 529 MiB peak",
        f"{size:.0f} MB reply, +{growth:.0f} MiB",
    )
    took = await asyncio.to_thread(stop_with_waits, settings)
    table.check(
        "SIGTERM with 40 held long-polls, 2 workers: until every process is gone",
        "up to 60 s",
        f"{took:.2f} s",
        label="stop with held waits",
        value=took,
        target=Target("<=", 2.0, " s"),
    )
    table.note(f"default limits (docs/deploy.md); 1 worker unless said; {fmt(connections)} idle")
    return table
