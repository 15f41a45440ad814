"""Issue 5 (d): many idle long-polling clients held while one pair chats.

One server process with auth on. Registered users (argon2id at its cheapest
cost via ``PAIRCHAT_ARGON2_*`` so setup is fast) each hold ``GET /updates?
since=<cursor>&wait=50`` on their own keep-alive connection and re-poll when it
returns; their first wait is drawn between 1 and 50 s so re-polls are spread
out as in a steady state (about clients / 50 re-polls per second). Measured on
the same server before (the baseline) and while the clients are held: server
CPU while nothing is sent (utime + stime of the granian workers from /proc),
resident memory (VmRSS of the main process and its workers) and the delivery
latency of a pair chatting meanwhile. Last, a probe of the thread reserve:
extra ``wait`` requests beyond ``--threads`` - 64 held ones are answered at once.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass

from bench import api
from bench.client import Connection
from bench.delivery import Watch, chat_once
from bench.report import Table, Target, fmt, ms, ratio, us
from bench.server import Server
from bench.settings import Settings
from bench.swarm import raise_fd_limit

HOLD_WAIT = 50
THREAD_RESERVE = 64
PROBE = 64
"""Extra long-polls sent on top of the held ones to show the reserve at work."""
TARGET_CPU = Target("<=", 5, "% of a core")
TARGET_P99 = Target("<=", 250, " ms")


@dataclass
class Holders:
    """Counters shared by the idle clients."""

    holding: int = 0
    returned: int = 0
    changed: int = 0


async def hold(conn: Connection, state: Holders, rng: random.Random) -> None:
    """One idle client: fetch the feed cursor, then keep a long-poll held on it."""
    cursor = (await conn.get("/updates")).json()["cursor"]
    wait = rng.uniform(1, HOLD_WAIT)
    while True:
        state.holding += 1
        try:
            reply = (await conn.get(f"/updates?since={cursor}&wait={wait:.2f}")).json()
        finally:
            state.holding -= 1
        state.returned += 1
        state.changed += len(reply["changed"])
        cursor = reply["cursor"]
        wait = HOLD_WAIT


async def idle_cpu(server: Server, seconds: float) -> float:
    """Server CPU over ``seconds`` of wall time, in percent of one core."""
    before, start = server.cpu_seconds(), time.perf_counter()
    await asyncio.sleep(seconds)
    return 100 * (server.cpu_seconds() - before) / (time.perf_counter() - start)


async def probe_reserve(server: Server, tokens: list[str], extra: int) -> tuple[int, int]:
    """Send ``extra`` more waits; (answered within 1 s, still held after 1 s)."""
    conns = [Connection(server.host, server.port, token) for token in tokens[:extra]]
    cursors = [(await c.get("/updates")).json()["cursor"] for c in conns]
    tasks = [
        asyncio.create_task(c.get(f"/updates?since={cur}&wait={HOLD_WAIT}"))
        for c, cur in zip(conns, cursors, strict=True)
    ]
    done, pending = await asyncio.wait(tasks, timeout=1.0)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    for conn in conns:
        await conn.close()
    return len(done), len(pending)


async def run(settings: Settings, clients: int | None = None) -> Table:
    clients = clients or settings.count(1000, 200)
    idle_window = settings.pick(10.0, 3.0)
    messages = settings.count(100, 30)
    # The production default; the quick run scales it so the reserve probe still bites.
    threads = 1100 if not settings.quick else clients + 100
    raise_fd_limit(clients * 2 + 256)
    table = Table(
        f"(d) {clients:,} idle long-polling clients while one pair chats",
        ["figure", "no clients (baseline)", f"{clients:,} held", "ratio", "target", "result"],
    )
    rng = random.Random(7)
    with Server(settings.data_dir("idle"), open_mode=False, threads=threads) as server:
        host, port = server.host, server.port
        names = [f"idle{i}" for i in range(clients)]
        started = time.perf_counter()
        tokens = await api.register_many(host, port, ["carol", "dave", *names], concurrency=8)
        register_seconds = time.perf_counter() - started

        base_cpu = await idle_cpu(server, idle_window / 2)
        base_rss = server.rss_mib()
        base_watch, _ = await chat_once(
            host, port, tokens, ("carol", "dave"), messages // 2, with_interval_poll=False
        )

        state = Holders()
        conns = [Connection(host, port, tokens[name]) for name in names]
        holders = [asyncio.create_task(hold(c, state, rng)) for c in conns]
        deadline = time.perf_counter() + 30
        while state.holding < clients and time.perf_counter() < deadline:
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.0)  # let the server pick every request up
        held_at_start = state.holding
        returned_before = state.returned
        cpu = await idle_cpu(server, idle_window)
        repolls = state.returned - returned_before
        rss = server.rss_mib()
        server_threads = server.threads_count()
        watch, _ = await chat_once(
            host, port, tokens, ("carol", "dave"), messages, with_interval_poll=False, seed=11
        )
        rss_after_chat = server.rss_mib()
        answered, still_held = await probe_reserve(server, [tokens[n] for n in names], PROBE)
        for task in holders:
            task.cancel()
        await asyncio.gather(*holders, return_exceptions=True)
        for conn in conns:
            await conn.close()

    _rows(table, base_cpu, cpu, base_rss, max(rss, rss_after_chat), base_watch, watch)
    capacity = threads - THREAD_RESERVE
    expected = max(0, PROBE - max(0, capacity - clients))
    table.add(
        f"extra waits answered at once (of {PROBE})",
        "",
        f"{answered} (held: {still_held})",
        "",
        f"~{expected} expected",
    )
    table.note(
        f"auth on (bearer tokens); {clients + 2:,} users registered in {register_seconds:.1f} s "
        "with PAIRCHAT_ARGON2_TIME_COST=1 PAIRCHAT_ARGON2_MEMORY_COST=1024"
    )
    table.note(
        f"{held_at_start:,} requests held when the idle window began; {repolls} re-polls "
        f"(waits expiring) during the {idle_window:g} s window; {state.changed} spurious "
        f"changes seen by idle clients; {server_threads:,} OS threads in the worker"
    )
    if repolls:
        per = (cpu - base_cpu) / 100 * idle_window / repolls
        table.note(
            f"server CPU per re-poll (an expired wait and the next request), derived: "
            f"{us(per)}; idle cost ~ clients / wait x that"
        )
    table.note(
        f"--threads {threads}: long-polls may hold {capacity:,} of them (all but "
        f"{THREAD_RESERVE}); past that a wait answers at once"
    )
    return table


def _rows(
    table: Table,
    base_cpu: float,
    cpu: float,
    base_rss: float,
    rss: float,
    base_watch: Watch,
    watch: Watch,
) -> None:
    table.check(
        "server CPU while idle (% of a core)",
        f"{fmt(base_cpu)}%",
        f"{fmt(cpu)}%",
        ratio(cpu / base_cpu) if base_cpu else "n/a",
        label="idle server CPU with clients held",
        value=cpu,
        target=TARGET_CPU,
    )
    table.add(
        "server RSS (main + workers)",
        f"{fmt(base_rss)} MiB",
        f"{fmt(rss)} MiB",
        ratio(rss / base_rss) if base_rss else "n/a",
    )
    for pct in (50, 95):
        table.add(
            f"delivery p{pct}",
            ms(base_watch.p(pct)),
            ms(watch.p(pct)),
            ratio(watch.p(pct) / base_watch.p(pct)),
        )
    p99 = watch.p(99)
    table.check(
        "delivery p99",
        ms(base_watch.p(99)),
        ms(p99),
        ratio(p99 / base_watch.p(99)),
        label="delivery p99 with clients held",
        value=p99 * 1000,
        target=TARGET_P99,
    )
    table.add(
        "delivery messages", str(len(base_watch.latencies())), str(len(watch.latencies())), ""
    )
