"""Small statistics helpers: percentiles and closed-loop load runs."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field


def percentile(values: Sequence[float], pct: float) -> float:
    """Linear-interpolated percentile (``pct`` in 0..100); NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * pct / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass
class LoadResult:
    """Requests completed and their latencies, accumulated over one or more runs."""

    requests: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    cpu: float = 0.0
    """Server CPU seconds (workers' utime + stime) spent during the runs, if probed."""

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def cpu_per_request(self) -> float:
        """Server CPU seconds per request (NaN when not probed)."""
        return self.cpu / self.requests if self.requests and self.cpu else float("nan")

    def p(self, pct: float) -> float:
        return percentile(self.latencies, pct)

    def add(self, other: LoadResult) -> None:
        self.requests += other.requests
        self.seconds += other.seconds
        self.latencies.extend(other.latencies)
        self.cpu += other.cpu


Request = Callable[[int], Awaitable[object]]
"""One request by client ``i`` (the callable owns client i's connection)."""


async def closed_loop(clients: int, request: Request, seconds: float) -> LoadResult:
    """``clients`` loops issuing requests back to back for ``seconds``.

    No request starts after the deadline; every request that started is counted
    and the elapsed time runs until the last one ends (so slow requests, such as
    a 100k-message history, are neither dropped nor cut short).
    """
    result = LoadResult()
    start = time.perf_counter()
    deadline = start + seconds

    async def loop(i: int) -> None:
        while True:
            began = time.perf_counter()
            if began >= deadline:
                return
            await request(i)
            result.requests += 1
            result.latencies.append(time.perf_counter() - began)

    await asyncio.gather(*(loop(i) for i in range(clients)))
    result.seconds = time.perf_counter() - start
    return result


async def interleaved(
    scenarios: dict[str, tuple[int, Request]],
    seconds: float,
    rounds: int,
    *,
    warmup: float = 0.3,
    cpu: Callable[[], float] | None = None,
) -> dict[str, LoadResult]:
    """Run each scenario ``rounds`` times, interleaved (A B C A B C ...), and sum.

    Interleaving spreads slow drifts of a noisy machine over every scenario
    instead of penalising whichever ran during a bad second. ``cpu``, when
    given, reads the server's CPU seconds before and after each run.
    """
    totals = {name: LoadResult() for name in scenarios}
    for name, (clients, request) in scenarios.items():
        if warmup > 0:
            await closed_loop(clients, request, warmup)
        totals[name] = LoadResult()
    for _ in range(rounds):
        for name, (clients, request) in scenarios.items():
            before = cpu() if cpu else 0.0
            run = await closed_loop(clients, request, seconds)
            run.cpu = cpu() - before if cpu else 0.0
            totals[name].add(run)
    return totals
