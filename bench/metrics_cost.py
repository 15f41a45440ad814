"""Issue 23 (l): what the Prometheus metrics cost on the send path.

Two ``pairchat-server`` processes side by side (open mode, 1 granian worker each),
one plain and one with ``--metrics-port`` (every request counted and timed, the
wake-up and password-check figures kept: backend/server/metrics.py). The same 8
clients, each in a pair of its own, send as fast as they can to one server and then
the other, in interleaved rounds (A B, then B A, so a drift of the machine weighs on
both alike); a scrape of ``/metrics`` per round, as Prometheus would do. The figure
is the median over rounds of (sends/s with) / (sends/s without); the goal is at
most 5 % lost (>= 0.95).
"""

from __future__ import annotations

import itertools
import statistics

import httpx

from bench import api
from bench.client import Connection
from bench.report import Table, Target, fmt, ms, ratio, us
from bench.server import Server, free_port
from bench.settings import Settings
from bench.stats import LoadResult, Request, closed_loop

CLIENTS = 8
TARGET = Target(">=", 0.95, "x")


async def run(settings: Settings) -> Table:
    seconds = settings.pick(3.0, 1.0)
    rounds = settings.count(6, 2)
    metrics_port = free_port()
    plain = Server(settings.data_dir("metrics-off"), open_mode=True)
    counted = Server(
        settings.data_dir("metrics-on"),
        open_mode=True,
        args=("--metrics-port", str(metrics_port)),
    )
    with plain, counted:
        servers = {"without --metrics-port": plain, "with --metrics-port": counted}
        clients: dict[str, list[Connection]] = {}
        for name, server in servers.items():
            setup = Connection(server.host, server.port)
            for i in range(CLIENTS):
                await api.create_pair(setup, f"pair{i}a", f"pair{i}b")
            await setup.close()
            clients[name] = [Connection(server.host, server.port) for _ in range(CLIENTS)]
        counter = itertools.count()

        def sender(name: str) -> Request:
            conns = clients[name]

            async def send(i: int) -> None:
                await api.send(conns[i], f"pair{i}a", f"pair{i}b", f"hello {next(counter)}")

            return send

        totals = {name: LoadResult() for name in servers}
        rates: dict[str, list[float]] = {name: [] for name in servers}
        for name in servers:  # warm both up: files opened, caches filled
            await closed_loop(CLIENTS, sender(name), 0.5)
        names = list(servers)
        for number in range(rounds):
            order = names if number % 2 == 0 else names[::-1]
            for name in order:
                server = servers[name]
                before = server.cpu_seconds()
                result = await closed_loop(CLIENTS, sender(name), seconds)
                result.cpu = server.cpu_seconds() - before
                totals[name].add(result)
                rates[name].append(result.rate)
            async with httpx.AsyncClient() as scraper:  # what Prometheus adds, once a round
                (await scraper.get(f"http://127.0.0.1:{metrics_port}/metrics")).raise_for_status()
        for conns in clients.values():
            for conn in conns:
                await conn.close()

    off, on = names
    per_round = [with_ / without for with_, without in zip(rates[on], rates[off], strict=True)]
    median = statistics.median(per_round)
    table = Table(
        "(l) What the metrics cost on the send path, 8 clients in 8 pairs",
        ["server", "sends/s", "p50", "p99", "server CPU/send", "vs without", "target", "result"],
    )
    for name in names:
        total = totals[name]
        cells = (
            name,
            fmt(total.rate),
            ms(total.p(50)),
            ms(total.p(99)),
            us(total.cpu_per_request),
        )
        if name == off:
            table.add(*cells, "1.00x (baseline)")
        else:
            table.check(
                *cells, ratio(median), label="sends/s with metrics", value=median, target=TARGET
            )
    table.note(
        f"open mode, 1 granian worker each; {rounds} interleaved rounds of {seconds:g} s per "
        f"server (A B, B A, ...), a /metrics scrape each round; the ratio is the median of "
        f"the rounds' ({', '.join(f'{r:.3f}' for r in per_round)})"
    )
    return table
