"""Issue 5 (c): delivery latency, send -> seen, long-poll vs a 3-second poll.

One pair (accounts with bearer tokens): alice sends messages at random
intervals; two receivers logged in as bob watch the same conversation at the
same time, one long-polling (``after_id`` + ``wait``), one polling every 3 s
without ``wait`` as the original client did. A message's latency runs from just
before its send request leaves to the moment a receiver's reply holding it has
been read. The helpers here are reused by the idle-clients benchmark.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field

from bench import api
from bench.client import Connection
from bench.report import Table, Target, ms, ratio
from bench.server import Server
from bench.settings import Settings
from bench.stats import percentile

LONG_POLL_WAIT = 25
POLL_INTERVAL = 3.0
TARGET_P50 = Target("<=", 20, " ms")
TARGET_P99 = Target("<=", 100, " ms")


@dataclass
class Watch:
    """When each message text was sent and when a receiver first saw it."""

    sent: dict[str, float] = field(default_factory=dict)
    seen: dict[str, float] = field(default_factory=dict)

    def latencies(self) -> list[float]:
        return [self.seen[text] - self.sent[text] for text in self.sent if text in self.seen]

    def p(self, pct: float) -> float:
        return percentile(self.latencies(), pct)


def _read(watch: Watch, reply_history: list[dict[str, object]]) -> int:
    now = time.perf_counter()
    last = 0
    for message in reply_history:
        watch.seen.setdefault(str(message["message"]), now)
        last = max(last, int(str(message["id"])))
    return last


async def long_poll_receiver(
    conn: Connection, me: str, peer: str, watch: Watch, expected: int, after_id: int = 0
) -> None:
    """Hold ``after_id`` + ``wait`` requests until ``expected`` messages were seen."""
    last = after_id
    while len(watch.seen) < expected:
        fields = {"user_one": me, "user_two": peer, "after_id": last, "wait": LONG_POLL_WAIT}
        reply = (await conn.post("/get_message_history", fields)).json()
        last = max(last, _read(watch, reply["history"]))


async def interval_receiver(
    conn: Connection,
    me: str,
    peer: str,
    watch: Watch,
    expected: int,
    interval: float = POLL_INTERVAL,
    after_id: int = 0,
) -> None:
    """Poll every ``interval`` seconds without ``wait`` until ``expected`` were seen."""
    last = after_id
    await asyncio.sleep(random.uniform(0, interval))
    while len(watch.seen) < expected:
        fields = {"user_one": me, "user_two": peer, "after_id": last}
        reply = (await conn.post("/get_message_history", fields)).json()
        last = max(last, _read(watch, reply["history"]))
        await asyncio.sleep(interval)


async def sender(
    conn: Connection,
    me: str,
    peer: str,
    watches: list[Watch],
    count: int,
    gap: tuple[float, float],
    rng: random.Random,
) -> None:
    """``count`` messages, each after a pause drawn uniformly from ``gap`` seconds."""
    for k in range(count):
        await asyncio.sleep(rng.uniform(*gap))
        text = f"delivery probe {k}"
        now = time.perf_counter()
        for watch in watches:
            watch.sent[text] = now
        await api.send(conn, me, peer, text)


async def chat_once(
    host: str,
    port: int,
    tokens: dict[str, str],
    pair: tuple[str, str],
    count: int,
    *,
    with_interval_poll: bool,
    seed: int = 5,
) -> tuple[Watch, Watch | None]:
    """One delivery run: pair[0] sends ``count`` messages; pair[1] receives."""
    author, reader = pair
    rng = random.Random(seed)
    fast, slow = Watch(), Watch()
    send_conn = Connection(host, port, tokens[author])
    lp_conn = Connection(host, port, tokens[reader])
    poll_conn = Connection(host, port, tokens[reader])
    start = (
        await lp_conn.post(
            "/get_message_history", {"user_one": reader, "user_two": author, "limit": 1}
        )
    ).json()["history"]
    after = int(start[-1]["id"]) if start else 0
    tasks = [
        long_poll_receiver(lp_conn, reader, author, fast, count, after),
        sender(send_conn, author, reader, [fast, slow], count, (0.02, 0.18), rng),
    ]
    if with_interval_poll:
        tasks.append(interval_receiver(poll_conn, reader, author, slow, count, after_id=after))
    try:
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=count * 0.5 + 30)
    finally:
        for conn in (send_conn, lp_conn, poll_conn):
            await conn.close()
    return fast, (slow if with_interval_poll else None)


def long_poll_checks(
    watch: Watch, label: str, p99_target: Target = TARGET_P99
) -> list[tuple[str, str, float, Target]]:
    """The p50 and p99 checks of a long-polling receiver, in milliseconds."""
    return [
        ("p50", f"{label} p50", watch.p(50) * 1000, TARGET_P50),
        ("p99", f"{label} p99", watch.p(99) * 1000, p99_target),
    ]


async def run(settings: Settings) -> Table:
    count = settings.count(200, 40)
    with Server(settings.data_dir("delivery"), open_mode=False) as server:
        tokens = await api.register_many(server.host, server.port, ["alice", "bob"], 1)
        fast, slow = await chat_once(
            server.host, server.port, tokens, ("alice", "bob"), count, with_interval_poll=True
        )
    assert slow is not None
    table = Table(
        "(c) Delivery latency send -> seen",
        ["receiver", "messages", "p50", "p95", "p99", "max", "target", "result"],
    )
    for name, watch in (("long-poll (after_id + wait=25)", fast), ("poll every 3 s", slow)):
        cells = (
            name,
            str(len(watch.latencies())),
            ms(watch.p(50)),
            ms(watch.p(95)),
            ms(watch.p(99)),
            ms(max(watch.latencies(), default=float("nan"))),
        )
        if watch is fast:
            table.check_many(*cells, checks=long_poll_checks(watch, "long-poll"))
        else:
            table.add(*cells)
    speedup = slow.p(50) / fast.p(50) if fast.p(50) else float("nan")
    table.note(
        f"auth on (bearer tokens); {count} messages at random gaps of 20-180 ms; both receivers "
        f"watch the same pair at the same time; median speed-up of long-poll {ratio(speedup)}"
    )
    table.note("latency includes the send request itself")
    return table
