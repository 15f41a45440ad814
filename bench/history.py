"""Issue 2 (b): history and idle-poll cost at 1k, 10k and 100k messages.

For each size N a pair is created through the API and N rows are inserted
directly with sqlite3 into its file (fast seeding; ids are rowids as usual).
Three requests are then compared on the same server, interleaved, with 8
concurrent clients (2 for the full history): the full ``get_message_history``
(the seed's reply, every message), the incremental idle poll (``after_id`` =
the last id, nothing new) and the trivial ``GET /healthz``; at 100k also the
idle poll of an empty pair. A request's cost is reported as its latency
and throughput, and as a ratio to the trivial endpoint (``healthz req/s`` over
its req/s: how many trivial requests one costs).
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from bench import api
from bench.client import Connection
from bench.report import Table, Target, cost_table, fmt, ms, ratio, us
from bench.server import Server
from bench.settings import Settings
from bench.stats import LoadResult, Request, interleaved

CLIENTS = 8
FULL_CLIENTS = 2
"""The full history of 100k messages takes ~0.4 s of server CPU: two clients keep the
worker busy without making every round wait for eight of them."""
TARGET_IDLE_POLL_100K = Target("<=", 1.5, "x")
EMPTY = "idle poll of an empty pair"


def seed(path: Path, count: int, one: str, two: str) -> int:
    """Append ``count`` messages alternating between the two authors; the last id."""
    now = int(time.time()) - count
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA busy_timeout = 10000")
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(
            "INSERT INTO conversation (author, message, date_sent, client_id) VALUES (?, ?, ?, ?)",
            (
                (
                    one if i % 2 else two,
                    f"seeded message number {i} with a few words",
                    now + i,
                    None,
                )
                for i in range(count)
            ),
        )
        conn.execute("COMMIT")
        last: int = conn.execute("SELECT max(rowid) FROM conversation").fetchone()[0]
        return last
    finally:
        conn.close()


async def run(settings: Settings) -> Table:
    sizes = [1_000, 10_000, 100_000]
    seconds = settings.pick(1.0, 0.6)
    rounds = settings.count(3, 1)
    table = cost_table("(b) History and idle-poll cost", "/healthz")
    data_dir = settings.data_dir("history")
    with Server(data_dir, open_mode=True) as server:
        conns = [Connection(server.host, server.port) for _ in range(CLIENTS)]
        for size in sizes:
            one, two = f"alice{size}", f"bob{size}"
            await api.create_pair(conns[0], one, two)
            if size == sizes[-1]:
                await api.create_pair(conns[0], "alice0", "bob0")
            last = seed(data_dir / f"{one}_{two}.db", size, one, two)
            full_fields: dict[str, object] = {"user_one": one, "user_two": two}
            poll_fields: dict[str, object] = {**full_fields, "after_id": last}
            # Correctness first: the full history has every row, the idle poll none.
            full = (await conns[0].post("/get_message_history", full_fields)).json()
            idle = (await conns[0].post("/get_message_history", poll_fields)).json()
            assert len(full["history"]) == size and full["history"][-1]["id"] == last
            assert idle["history"] == [], idle

            async def healthz(i: int) -> None:
                await conns[i].get("/healthz")

            async def poll(i: int, fields: dict[str, object] = poll_fields) -> None:
                await conns[i].post("/get_message_history", fields)

            async def whole(i: int, fields: dict[str, object] = full_fields) -> None:
                await conns[i].post("/get_message_history", fields)

            async def empty(i: int) -> None:
                fields = {"user_one": "alice0", "user_two": "bob0", "after_id": 0}
                await conns[i].post("/get_message_history", fields)

            scenarios: dict[str, tuple[int, Request]] = {
                "GET /healthz (baseline)": (CLIENTS, healthz),
                "idle poll (after_id=last)": (CLIENTS, poll),
                "full history": (FULL_CLIENTS, whole),
            }
            if size == sizes[-1]:
                scenarios[EMPTY] = (CLIENTS, empty)
            results = await interleaved(scenarios, seconds, rounds, cpu=server.cpu_seconds)
            _rows(table, size, results)
        for conn in conns:
            await conn.close()
    table.note(f"{CLIENTS} concurrent clients, except the full history: {FULL_CLIENTS} clients")
    table.note(
        f"'{EMPTY}' (N = 0) was measured in the 100,000 rounds: the idle poll's cost does "
        "not depend on N"
    )
    table.note(
        f"open mode (--open), 1 granian worker; rows seeded with sqlite3; {rounds} interleaved "
        f"rounds of {seconds:g} s per request type and size; a slow request started before "
        "the end of a round is waited for and counted"
    )
    return table


def _rows(table: Table, size: int, results: dict[str, LoadResult]) -> None:
    base = results["GET /healthz (baseline)"].rate
    for name, result in results.items():
        cost = base / result.rate if result.rate else float("nan")
        cells = (
            "0" if name == EMPTY else f"{size:,}",
            name,
            fmt(result.rate),
            ms(result.p(50)),
            ms(result.p(99)),
            us(result.cpu_per_request),
        )
        if name.startswith("GET /healthz"):
            table.add(*cells, "1.00x (baseline)")
        elif name == "idle poll (after_id=last)" and size == 100_000:
            table.check(
                *cells,
                ratio(cost),
                label="idle poll, 100k, cost vs /healthz",
                value=cost,
                target=TARGET_IDLE_POLL_100K,
            )
        else:
            table.add(*cells, ratio(cost))
