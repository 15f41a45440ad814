"""Issue 13 (g): 10,000 held clients on one box, against the least an asyncio server does.

For each client kind of ``bench/swarm.py`` (``history``: open-mode pair
long-polls, one pair per client; ``updates``: bearer-token feed long-polls, one
account per client) and for each server — ``pairchat-server`` in open mode with
one worker and ``--max-waiters`` raised to the held count, and the aiohttp
ceiling of ``bench/ceiling.py`` — one server process is started and the swarm's
clients are added in steps (1,000, 2,000, 5,000, 10,000 held; ``--quick``:
1,000 and 2,000). At each step, with every client held:

- idle server CPU: utime + stime of the whole server process tree over a window
  in which nothing is sent (held waits expire and are asked again meanwhile);
- server RSS: VmRSS summed over the process tree; per held client
  (RSS at N - RSS with none held) / N;
- ``GET /healthz`` latency, one request at a time on one keep-alive connection;
- delivery: one pair chats (a message every ~50 ms, the receiver holding a
  pair long-poll) — latency p50/p99 and messages never seen (missed).

The ``updates`` accounts and their tokens are written into the data folder with
the backend's own services before the server starts (``/register`` would hash
10,000 passwords). The ceiling runs in the same run on the same machine, so the
ratios pairchat / ceiling are the figures to read on a noisy box.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from backend.core.settings import Settings as ServerSettings
from backend.services.wiring import build_services
from bench.client import Connection
from bench.delivery import Watch, long_poll_receiver, sender
from bench.idle import HOLD_WAIT
from bench.report import Table, Target, fmt, ms, ratio
from bench.server import REPO, Server, _cpu_seconds
from bench.settings import Settings
from bench.stats import percentile
from bench.swarm import Swarm, raise_fd_limit

KINDS = ("history", "updates")
SWARM_PROCESSES = 2
CHAT = ("carol", "dave")
GAP = 0.05
"""Seconds between two sends of the chatting pair."""
HEADROOM = 256
"""Waiters and file descriptors beyond the held count (the chat, /healthz, the ramp)."""
TARGET_P50 = Target("<=", 20, " ms")
TARGET_P99 = Target("<=", 250, " ms")
TARGET_MISSED = Target("<=", 0, "")
TARGET_CPU = Target("<=", 10, "% of a core")
TARGET_RSS = Target("<=", 2048, " MiB")
TARGET_HEALTH = Target("<=", 100, " ms")


class Ceiling(Server):
    """``python -m bench.ceiling PORT`` as the server under test (one process, no workers)."""

    def start(self, timeout: float = 30.0) -> Server:
        cmd = [sys.executable, "-m", "bench.ceiling", str(self.port)]
        with self._log.open("wb") as log:
            self.proc = subprocess.Popen(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
        self._wait_healthy(timeout)
        return self


def tree_cpu(server: Server) -> float:
    """CPU seconds of the main process and its workers."""
    return _cpu_seconds(server.pid) + server.cpu_seconds()


async def idle_cpu(server: Server, seconds: float) -> float:
    """The process tree's CPU over ``seconds`` of wall time, in percent of one core."""
    before, start = tree_cpu(server), time.perf_counter()
    await asyncio.sleep(seconds)
    return 100 * (tree_cpu(server) - before) / (time.perf_counter() - start)


async def healthz(server: Server, probes: int) -> list[float]:
    """Latencies of ``probes`` ``GET /healthz``, one at a time, 20 ms apart."""
    conn = Connection(server.host, server.port)
    latencies = []
    try:
        for _ in range(probes):
            began = time.perf_counter()
            await conn.get("/healthz")
            latencies.append(time.perf_counter() - began)
            await asyncio.sleep(0.02)
    finally:
        await conn.close()
    return latencies


async def chat(server: Server, count: int, seed: int) -> tuple[Watch, int]:
    """CHAT[0] sends ``count`` messages GAP apart, CHAT[1] long-polls: (watch, missed)."""
    author, reader = CHAT
    watch = Watch()
    send_conn, lp_conn = Connection(server.host, server.port), Connection(server.host, server.port)
    try:
        fields = {"user_one": reader, "user_two": author, "limit": 1}
        start = (await lp_conn.post("/get_message_history", fields)).json()["history"]
        after = int(start[-1]["id"]) if start else 0
        receiving = asyncio.create_task(
            long_poll_receiver(lp_conn, reader, author, watch, count, after)
        )
        await asyncio.sleep(0.2)  # the receiver's long-poll is held
        await sender(send_conn, author, reader, [watch], count, (GAP, GAP), random.Random(seed))
        with contextlib.suppress(TimeoutError):  # what was not seen by now is missed
            await asyncio.wait_for(receiving, timeout=5)
    finally:
        await send_conn.close()
        await lp_conn.close()
    return watch, count - len(watch.seen)


@dataclass
class Step:
    """What one server showed with ``held`` clients held."""

    held: int
    phase: str  # "just held" (first waits ending) or "steady" (every wait asked again unchanged)
    opened: int
    cpu: float
    repolls: float  # replies to held clients per second during the idle window
    rss: float
    health: list[float]
    watch: Watch
    missed: int
    errors: int
    reconnects: int
    ramp: float = 0.0

    def per_client_kib(self, base_rss: float) -> float:
        return (self.rss - base_rss) * 1024 / self.held if self.held else float("nan")


@dataclass
class Run:
    """One server and one client kind through every step."""

    server: str
    kind: str
    base_rss: float
    base_cpu: float
    steps: list[Step]


def seed_accounts(data_dir: Path, count: int) -> list[tuple[str, str]]:
    """``count`` accounts with one bearer token each, written straight into the data folder."""
    settings = ServerSettings(
        data_dir=data_dir, watch_interval=0, argon2_time_cost=1, argon2_memory_cost=1024
    )
    items = []
    with build_services(settings) as services:
        hashed = services.accounts.hasher.hash("bench-password-1")
        for i in range(count):
            name = f"held{i}"
            services.account_store.add_user(name, None, hashed, 0)
            items.append((name, services.accounts.issue_token(name)))
    return items


async def measure(
    server: Server,
    swarm: Swarm,
    level: int,
    phase: str,
    window: float,
    probes: int,
    messages: int,
) -> Step:
    """Idle CPU over ``window``, RSS, /healthz and a chat, with ``level`` clients held."""
    before = await swarm.counters()
    cpu = await idle_cpu(server, window)
    during = await swarm.counters()
    rss = server.rss_mib()
    health = await healthz(server, probes)
    watch, missed = await chat(server, messages, seed=level)
    rss = max(rss, server.rss_mib())
    after = await swarm.counters()
    return Step(
        held=level,
        phase=phase,
        opened=after.outstanding,
        cpu=cpu,
        repolls=(during.replies - before.replies) / window,
        rss=rss,
        health=health,
        watch=watch,
        missed=missed,
        errors=after.errors - before.errors,
        reconnects=after.reconnects - before.reconnects,
    )


async def hold_steps(
    server: Server,
    swarm: Swarm,
    name: str,
    kind: str,
    items: list[tuple[str, str]],
    levels: list[int],
    settings: Settings,
) -> Run:
    """Warm up, measure with none held, then add clients level by level and measure each."""
    window = settings.pick(10.0, 3.0)
    messages = settings.count(80, 30)
    probes = settings.count(100, 40)
    await chat(server, 10, seed=1)  # the first requests' imports and caches are not per client
    await healthz(server, 10)
    base_cpu = await idle_cpu(server, settings.pick(3.0, 1.0))
    base_rss = server.rss_mib()
    run = Run(name, kind, base_rss, base_cpu, [])
    held = 0
    try:
        for level in levels:
            began = time.perf_counter()
            _, failed = await swarm.open(
                kind, server.host, server.port, items[held:level], HOLD_WAIT
            )
            deadline = time.perf_counter() + 30
            while (await swarm.counters()).outstanding < level and time.perf_counter() < deadline:
                await asyncio.sleep(0.2)
            ramp = time.perf_counter() - began
            held = level
            await asyncio.sleep(1.0)  # the server reads the last requests and parks them
            phases = ["just held"]
            if level == levels[-1] and not settings.quick:
                phases.append("steady")
            for phase in phases:
                if phase == "steady":
                    # every client's first (shorter) wait has ended and its next request,
                    # asking for HOLD_WAIT, is held: from now on a wait that ends is asked
                    # again unchanged, as it is for clients that stay online
                    settle = began + ramp + HOLD_WAIT + 2 - time.perf_counter()
                    await asyncio.sleep(max(0.0, settle))
                step = await measure(server, swarm, level, phase, window, probes, messages)
                step.ramp, step.errors = ramp, step.errors + failed
                failed = 0
                run.steps.append(step)
                print(
                    f"  (g) {name} {kind} {level:,} {phase}: held {step.opened:,}, "
                    f"cpu {step.cpu:.1f}% ({step.repolls:.0f} re-polls/s), "
                    f"rss {step.rss:.0f} MiB, p99 {step.watch.p(99) * 1000:.1f} ms, "
                    f"missed {step.missed}, /healthz p99 {_p99(step.health) * 1000:.1f} ms, "
                    f"ramp {ramp:.1f} s",
                    file=sys.stderr,
                    flush=True,
                )
    finally:
        await swarm.close_all()
    return run


async def run(settings: Settings) -> list[Table]:
    levels = [1000, 2000] if settings.quick else [1000, 2000, 5000, 10000]
    top = levels[-1]
    raise_fd_limit(2 * top + 4 * HEADROOM)  # the servers inherit it
    waiters = top + HEADROOM
    runs: dict[str, list[Run]] = {kind: [] for kind in KINDS}
    started = time.perf_counter()
    with Swarm(SWARM_PROCESSES, top) as swarm:
        for kind in KINDS:
            folder = settings.data_dir(f"scale-{kind}")
            if kind == "history":
                items = [(f"held{i}", f"peer{i}") for i in range(top)]
            else:
                items = seed_accounts(folder, top)
            pairchat = Server(folder, args=("--max-waiters", str(waiters)))
            with pairchat:
                runs[kind].append(
                    await hold_steps(pairchat, swarm, "pairchat", kind, items, levels, settings)
                )
            with Ceiling(settings.data_dir(f"scale-{kind}-ceiling")) as ceiling:
                runs[kind].append(
                    await hold_steps(ceiling, swarm, "ceiling", kind, items, levels, settings)
                )
    seconds = time.perf_counter() - started
    return [_table(runs[kind], kind, waiters, seconds) for kind in KINDS]


def _ratio(ours: float, theirs: float) -> str:
    return ratio(ours / theirs) if theirs else "n/a"


def _table(runs: list[Run], kind: str, waiters: int, seconds: float) -> Table:
    what = {
        "history": "open-mode pair long-polls (POST /get_message_history after_id + wait)",
        "updates": "bearer-token feed long-polls (GET /updates?since=&wait=)",
    }[kind]
    top = max((s.held for r in runs for s in r.steps), default=0)
    table = Table(
        f"(g) Up to {top:,} held {kind} clients while one pair chats",
        [
            "held",
            "server",
            "delivery p50",
            "p99",
            "missed",
            "idle CPU (re-polls)",
            "RSS",
            "per client",
            "/healthz p99",
            "target",
            "result",
        ],
    )
    by_name = {r.server: r for r in runs}
    ours, theirs = by_name.get("pairchat"), by_name.get("ceiling")
    ceiling_steps = {(s.held, s.phase): s for s in theirs.steps} if theirs else {}
    for step in ours.steps if ours else []:
        assert ours is not None
        cells = _cells(step, "pairchat", ours.base_rss)
        if step is ours.steps[-1]:
            label = f"{top:,} {kind}" + (f" ({step.phase})" if step.phase == "steady" else "")
            checks = [
                ("p50", f"{label}: delivery p50", step.watch.p(50) * 1000, TARGET_P50),
                ("p99", f"{label}: delivery p99", step.watch.p(99) * 1000, TARGET_P99),
                ("missed", f"{label}: missed deliveries", float(step.missed), TARGET_MISSED),
                ("CPU", f"{label}: idle server CPU", step.cpu, TARGET_CPU),
                ("RSS", f"{label}: server RSS", step.rss, TARGET_RSS),
                ("healthz p99", f"{label}: /healthz p99", _p99(step.health) * 1000, TARGET_HEALTH),
            ]
            table.check_many(*cells, checks=checks)
        else:
            table.add(*cells)
        other = ceiling_steps.get((step.held, step.phase))
        if other is None or theirs is None:
            continue
        table.add(*_cells(other, "ceiling", theirs.base_rss))
        table.add(
            "",
            "pairchat / ceiling",
            _ratio(step.watch.p(50), other.watch.p(50)),
            _ratio(step.watch.p(99), other.watch.p(99)),
            "",
            _ratio(step.cpu, other.cpu),
            _ratio(step.rss, other.rss),
            _ratio(step.per_client_kib(ours.base_rss), other.per_client_kib(theirs.base_rss)),
            _ratio(_p99(step.health), _p99(other.health)),
        )
    table.note(
        f"clients: {what}, held by bench/swarm.py ({SWARM_PROCESSES} processes, raw keep-alive "
        f"sockets), each asking for wait={HOLD_WAIT} s again when its wait ends (the first "
        f"wait drawn from 1-{HOLD_WAIT} s); added in steps on the same server process"
    )
    table.note(
        "pairchat: pairchat-server --open, 1 worker, the default --threads, "
        f"--max-waiters {waiters:,}, the open-files limit raised to the hard limit "
        "(the server inherits it); the send rate limit raised for the chat (bench/server.py "
        "ROOMY_LIMITS). ceiling: bench/ceiling.py (aiohttp on uvloop, no storage, no auth)"
    )
    table.note(
        f"delivery: one pair, a message every {GAP * 1000:.0f} ms, the receiver holding a pair "
        "long-poll; missed = never seen 5 s after the last send. idle CPU: the server's "
        "process tree, nothing sent, in % of one core; RSS: its process tree; per client = "
        "(RSS - RSS with none held) / held"
    )
    for r in runs:
        details = ", ".join(
            f"{_held(s)}: {s.opened:,} held, ramp {s.ramp:.1f} s, "
            f"{s.errors} errors, {s.reconnects} reconnects"
            for s in r.steps
        )
        table.note(
            f"{r.server}: none held {fmt(r.base_rss)} MiB, idle CPU {fmt(r.base_cpu)}%; {details}"
        )
    table.note(
        "just held: measured 1 s after a step's clients are all held, while their first "
        "(shorter) waits end: each is followed by a new request that runs in Flask once; "
        f"steady: {HOLD_WAIT} s later, when every wait that ends is asked again unchanged "
        "(a repeat parked by the front, backend/server/repeats.py), as for clients that stay online"
    )
    table.note(f"both kinds and servers measured in {seconds:.0f} s")
    return table


def _p99(values: list[float]) -> float:
    return percentile(values, 99)


def _held(step: Step) -> str:
    return f"{step.held:,}" + (" steady" if step.phase == "steady" else "")


def _cells(step: Step, server: str, base_rss: float) -> list[str]:
    return [
        _held(step),
        server,
        ms(step.watch.p(50)),
        ms(step.watch.p(99)),
        str(step.missed),
        f"{fmt(step.cpu)}% ({step.repolls:.0f}/s)",
        f"{fmt(step.rss)} MiB",
        f"{fmt(step.per_client_kib(base_rss))} KiB",
        ms(_p99(step.health)),
    ]
