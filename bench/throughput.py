"""Issue 2 (a): send throughput with 8 concurrent clients, against ``GET /healthz``.

One server process (open mode), three scenarios interleaved over several rounds:
the trivial endpoint, 8 clients sending in one pair, and 8 clients each sending in
its own pair. A fourth row sends in one pair with bearer tokens (the server still
accepts tokens in open mode), to show what authentication adds. Throughput is
reported as a ratio to the trivial endpoint measured in the same rounds.
"""

from __future__ import annotations

import itertools

from bench import api
from bench.client import Connection
from bench.report import Table, Target, fmt, ms, ratio, us
from bench.server import Server
from bench.settings import Settings
from bench.stats import Request, interleaved

CLIENTS = 8
TARGET_ONE_PAIR = Target(">=", 0.5, "x")


async def run(settings: Settings) -> Table:
    seconds = settings.pick(1.0, 0.7)
    rounds = settings.count(5, 1)
    with Server(settings.data_dir("throughput"), open_mode=True) as server:
        host, port = server.host, server.port
        setup = Connection(host, port)
        tokens = await api.register_many(host, port, ["alice", "bob"], concurrency=1)
        for i in range(CLIENTS):
            await api.create_pair(setup, f"pair{i}a", f"pair{i}b")
        await api.create_pair(setup, "alice", "bob")
        await setup.close()

        plain = [Connection(host, port) for _ in range(CLIENTS)]
        authed = [Connection(host, port, tokens["alice"]) for _ in range(CLIENTS)]
        counter = itertools.count()

        async def healthz(i: int) -> None:
            await plain[i].get("/healthz")

        async def one_pair(i: int) -> None:
            await api.send(plain[i], "alice", "bob", f"hello {next(counter)}")

        async def own_pairs(i: int) -> None:
            await api.send(plain[i], f"pair{i}a", f"pair{i}b", f"hello {next(counter)}")

        async def one_pair_token(i: int) -> None:
            await api.send(authed[i], "alice", "bob", f"hello {next(counter)}")

        scenarios: dict[str, tuple[int, Request]] = {
            "GET /healthz (baseline)": (CLIENTS, healthz),
            "send, one pair": (CLIENTS, one_pair),
            "send, 8 distinct pairs": (CLIENTS, own_pairs),
            "send, one pair, bearer token": (CLIENTS, one_pair_token),
        }
        results = await interleaved(scenarios, seconds, rounds, cpu=server.cpu_seconds)
        for conn in (*plain, *authed):
            await conn.close()

    table = Table(
        "(a) Send throughput, 8 concurrent clients",
        ["scenario", "req/s", "p50", "p99", "server CPU/req", "vs /healthz", "target", "result"],
    )
    base = results["GET /healthz (baseline)"].rate
    for name, result in results.items():
        cells = (
            name,
            fmt(result.rate),
            ms(result.p(50)),
            ms(result.p(99)),
            us(result.cpu_per_request),
        )
        share = result.rate / base if base else float("nan")
        if name == "send, one pair":
            table.check(*cells, ratio(share), label=name, value=share, target=TARGET_ONE_PAIR)
        else:
            table.add(*cells, "1.00x (baseline)" if result.rate == base else ratio(share))
    table.note(
        f"open mode (--open), 1 granian worker; {rounds} interleaved rounds of {seconds:g} s "
        f"per scenario; {CLIENTS} keep-alive connections from one asyncio client process"
    )
    return table
