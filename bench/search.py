"""Issue 12 (h): whole-history search latency at 1k, 20k and 100k messages.

For each size N a pair is created through the API (so its file has the FTS5
index and its triggers from the start) and N messages are inserted with sqlite3
after one *needle*: the pair's oldest message, N messages back, holding a word
no other message has. On the same server, interleaved, with ``CLIENTS``
concurrent clients, these are compared:

- a plain history page (the newest 20 messages): the baseline;
- a search for the needle's word (the one match, N messages back);
- a search for a word of every message (the newest 20 matches, ``has_more``);
- a search that matches nothing.

Each row gives latency, throughput and server CPU per request, and its cost as
the baseline's req/s over its own (how many history pages one search costs).
Then, once per size, the first search of a file made the old way (the original
server's layout, no index): it builds the index, so its latency is the one-off
price an old conversation pays.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from bench import api
from bench.client import Connection
from bench.history import seed
from bench.report import Table, Target, cost_table, fmt, ms, ratio, us
from bench.server import Server
from bench.settings import Settings
from bench.stats import LoadResult, Request, interleaved

CLIENTS = 4
NEEDLE = "zanzibar"
PAGE = "history page (newest 20)"
RARE = "search: 1 match, N back"
COMMON = "search: every message matches"
NOTHING = "search: no match"
TARGET_NEEDLE_P99 = Target("<=", 50, " ms")
"""The TUI has 500 ms to show a match 20,000 back; the server may take a tenth of it."""


def old_file(path: Path, count: int) -> None:
    """A pair file exactly as the original server made it (no index), ending with the needle."""
    conn = sqlite3.connect(path)
    try:
        conn.execute("CREATE TABLE conversation (author text, message text, date_sent text)")
        conn.executemany(
            "INSERT INTO conversation VALUES (?, ?, ?)",
            (
                ("a" if i % 2 else "b", f"seeded message number {i} with a few words", str(i))
                for i in range(count)
            ),
        )
        conn.execute("INSERT INTO conversation VALUES ('a', ?, '0')", (f"the {NEEDLE} plan",))
        conn.commit()
    finally:
        conn.close()


async def run(settings: Settings) -> Table:
    sizes = [1_000, 20_000, 100_000]
    seconds = settings.pick(1.0, 0.5)
    rounds = settings.count(3, 1)
    table = cost_table("(h) Whole-history search", "history page")
    data_dir = settings.data_dir("search")
    with Server(data_dir, open_mode=True) as server:
        conns = [Connection(server.host, server.port) for _ in range(CLIENTS)]
        for size in sizes:
            one, two = f"alice{size}", f"bob{size}"
            await api.create_pair(conns[0], one, two)
            needle = await api.send(conns[0], one, two, f"the {NEEDLE} plan is on")
            seed(data_dir / f"{one}_{two}.db", size, one, two)
            pair = {"user_one": one, "user_two": two}
            # Correctness first: the needle is found, N messages back.
            found = (await conns[0].post("/search_messages", {**pair, "q": NEEDLE})).json()
            assert [m["id"] for m in found["results"]] == [needle], found
            tail = (await conns[0].post("/get_message_history", {**pair, "limit": 1})).json()
            assert tail["history"][0]["id"] - needle == size

            def post(path: str, fields: dict[str, object]) -> Request:
                async def request(i: int) -> None:
                    await conns[i].post(path, fields)

                return request

            scenarios: dict[str, tuple[int, Request]] = {
                PAGE: (CLIENTS, post("/get_message_history", {**pair, "limit": 20})),
                RARE: (CLIENTS, post("/search_messages", {**pair, "q": NEEDLE})),
                COMMON: (CLIENTS, post("/search_messages", {**pair, "q": "seeded words"})),
                NOTHING: (CLIENTS, post("/search_messages", {**pair, "q": "qwertyuiop"})),
            }
            results = await interleaved(scenarios, seconds, rounds, cpu=server.cpu_seconds)
            _rows(table, size, results)
        for size in sizes:
            one, two = f"old{size}", f"seed{size}"
            old_file(data_dir / f"{one}_{two}.db", size)
            fields = {"user_one": one, "user_two": two, "q": NEEDLE}
            started = time.perf_counter()
            found = (await conns[0].post("/search_messages", fields)).json()
            first = time.perf_counter() - started
            assert [m["id"] for m in found["results"]] == [size + 1], found
            started = time.perf_counter()
            await conns[0].post("/search_messages", fields)
            second = time.perf_counter() - started
            table.add(
                f"{size:,}",
                "first search of an old file (builds its index)",
                "",
                ms(first),
                "",
                "",
                f"then {ms(second)}",
            )
        for conn in conns:
            await conn.close()
    table.note(
        f"{CLIENTS} concurrent clients per request type; open mode (--open), 1 granian worker; "
        f"{rounds} interleaved rounds of {seconds:g} s per request type and size"
    )
    table.note(
        "rows seeded with sqlite3 into a file made through the API, so the FTS5 triggers "
        "indexed them as they would a send; the needle is the pair's oldest message"
    )
    table.note(
        "the last rows: one request each (the index is built by the first search of a file "
        "made by the original server, whatever opened it before), then the next search"
    )
    return table


def _rows(table: Table, size: int, results: dict[str, LoadResult]) -> None:
    base = results[PAGE].rate
    for name, result in results.items():
        cost = base / result.rate if result.rate else float("nan")
        cells = (
            f"{size:,}",
            name,
            fmt(result.rate),
            ms(result.p(50)),
            ms(result.p(99)),
            us(result.cpu_per_request),
        )
        if name == PAGE:
            table.add(*cells, "1.00x (baseline)")
        elif name == RARE and size == 20_000:
            table.check(
                *cells,
                ratio(cost),
                label="search, match 20,000 back, p99",
                value=result.p(99) * 1000,
                target=TARGET_NEEDLE_P99,
            )
        else:
            table.add(*cells, ratio(cost))
