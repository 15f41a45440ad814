"""Issues 13 and 21 (g): 10,000+ held clients on one box, against the least an asyncio server does.

For each client kind of ``bench/swarm.py`` (``history``: open-mode pair
long-polls, one pair per client; ``updates``: bearer-token feed long-polls, one
account per client; ``events``: one ``GET /events`` stream per account) and for
each server — ``pairchat-server`` in open mode with one worker, and the aiohttp
ceiling of ``bench/ceiling.py`` — one server process is started and the swarm's
clients are added in steps (long-polls: 1,000, 2,000, 5,000, 10,000 held, with
``--max-waiters`` raised to the held count; streams: 10,000 and 18,000 on the
default server, no capacity flag; ``--quick``: 1,000 and 2,000). At each step,
with every client held:

- idle server CPU: utime + stime of the whole server process tree over a window
  in which nothing is sent (held waits expire and are asked again meanwhile;
  streams get their keep-alive comments: the window is two heartbeat periods);
- server RSS: VmRSS summed over the process tree; per held client
  (RSS at N - RSS with none held) / N;
- ``GET /healthz`` latency, one request at a time on one keep-alive connection;
- delivery: one pair chats (a message every ~50 ms, the receiver holding a
  pair long-poll, or for ``events`` its own event stream) — latency p50/p99 and
  messages never seen (missed).

The accounts and their tokens are written into the data folder with the
backend's own services before the server starts (``/register`` would hash
10,000 passwords). The ceiling runs in the same run on the same machine, so the
ratios pairchat / ceiling are the figures to read on a noisy box.

``python -m bench.scale [--kinds events] [--quick] [--markdown]`` runs (g) alone
(``just bench --only g`` runs every kind).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from backend.core.settings import Settings as ServerSettings
from backend.services.wiring import build_services
from bench.client import Connection
from bench.delivery import Watch, long_poll_receiver, sender
from bench.idle import HOLD_WAIT
from bench.report import Table, Target, fmt, ms, ratio, summary
from bench.server import REPO, ROOMY_LIMITS, Server, _cpu_seconds
from bench.settings import Settings
from bench.stats import percentile
from bench.streams import stream_chat
from bench.swarm import Swarm, raise_fd_limit

KINDS = ("history", "updates", "events")
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
# issue 21: event streams
HEARTBEAT = 25.0
"""The server's default PAIRCHAT_STREAM_HEARTBEAT; the ceiling uses the same."""
FAST_HEARTBEAT = 5.0
"""A second pass at the lower level with this heartbeat: the cost of one heartbeat."""
STREAM_LEVELS = [10_000, 18_000]
STREAM_P50 = Target("<=", 10, " ms")
STREAM_P99 = Target("<=", 100, " ms")
STREAM_CPU = Target("<=", 2, "% of a core")
STREAM_KIB = Target("<=", 20, " KiB")
STREAM_CPU_RATIO = Target("<=", 1.5, "x")
STREAM_CHAT = ("streamer-a", "streamer-b")
"""The chatting pair of ``events``: accounts with tokens; the second holds a stream."""


class Ceiling(Server):
    """``python -m bench.ceiling PORT`` as the server under test (one process, no workers)."""

    def start(self, timeout: float = 30.0) -> Server:
        cmd = [sys.executable, "-m", "bench.ceiling", str(self.port)]
        env = {**os.environ, **self.env}  # PAIRCHAT_STREAM_HEARTBEAT, as pairchat's
        with self._log.open("wb") as log:
            self.proc = subprocess.Popen(
                cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT
            )
        self._wait_healthy(timeout)
        return self


Chat = Callable[[Server, int, int], Awaitable[tuple[Watch, int]]]
"""(server, messages, seed) -> (watch, missed): one delivery measurement."""


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
    window: float = 0.0
    threads: int = 0  # OS threads of the server's workers, with everything held
    ended: int = 0  # streams the server ended during the step

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
    heartbeat: float = HEARTBEAT
    base_threads: int = 0
    capacity: str = ""  # what the server logged it holds
    extra: list[Run] = field(default_factory=list)  # the same kind, another heartbeat


def seed_accounts(data_dir: Path, count: int, names: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    """``count`` accounts (``held0``...) and ``names`` with one bearer token each, written
    straight into the data folder; the ``names`` come last in the list."""
    settings = ServerSettings(
        data_dir=data_dir, watch_interval=0, argon2_time_cost=1, argon2_memory_cost=1024
    )
    items = []
    with build_services(settings) as services:
        hashed = services.accounts.hasher.hash("bench-password-1")
        for name in [f"held{i}" for i in range(count)] + list(names):
            services.account_store.add_user(name, None, hashed, 0)
            items.append((name, services.accounts.issue_token(name)))
    return items


def pair_chat(server: Server, count: int, seed: int) -> Awaitable[tuple[Watch, int]]:
    return chat(server, count, seed)


def events_chat(tokens: tuple[str | None, str]) -> Chat:
    """The ``events`` delivery: STREAM_CHAT[0] sends, STREAM_CHAT[1] holds its own stream."""

    def talk(server: Server, count: int, seed: int) -> Awaitable[tuple[Watch, int]]:
        return stream_chat(server.host, server.port, STREAM_CHAT, tokens, count, GAP)

    return talk


def capacity_logged(server: Server) -> str:
    """What pairchat-server logged it holds ('18144 clients per worker'), if it did."""
    try:
        text = server._log.read_text(errors="replace")
    except OSError:
        return ""
    found = re.search(r"holding up to (\d+) clients per worker", text)
    return f"{int(found.group(1)):,} clients per worker" if found else ""


async def measure(
    server: Server,
    swarm: Swarm,
    level: int,
    phase: str,
    window: float,
    probes: int,
    messages: int,
    talk: Chat,
    streams: bool = False,
) -> Step:
    """Idle CPU over ``window``, RSS, /healthz and a chat, with ``level`` clients held.

    ``streams``: the rate in the idle window is of keep-alive comments, not re-polls."""
    before = await swarm.counters()
    cpu = await idle_cpu(server, window)
    during = await swarm.counters()
    rss = server.rss_mib()
    threads = server.threads_count()
    health = await healthz(server, probes)
    watch, missed = await talk(server, messages, level)
    rss = max(rss, server.rss_mib())
    after = await swarm.counters()
    beats = during.heartbeats - before.heartbeats if streams else during.replies - before.replies
    return Step(
        held=level,
        phase=phase,
        opened=after.outstanding,
        cpu=cpu,
        repolls=beats / window,
        rss=rss,
        health=health,
        watch=watch,
        missed=missed,
        errors=after.errors - before.errors,
        reconnects=after.reconnects - before.reconnects,
        window=window,
        threads=threads,
        ended=after.ended - before.ended,
    )


async def hold_steps(
    server: Server,
    swarm: Swarm,
    name: str,
    kind: str,
    items: list[tuple[str, str]],
    levels: list[int],
    settings: Settings,
    talk: Chat = pair_chat,
    heartbeat: float = HEARTBEAT,
) -> Run:
    """Warm up, measure with none held, then add clients level by level and measure each."""
    streams = kind == "events"
    # a stream's idle cost is its heartbeats: whole periods (two; --quick: one), so each
    # held stream's keep-alive is in the window as often whatever its phase
    window = settings.pick(2, 1) * heartbeat if streams else settings.pick(10.0, 3.0)
    messages = settings.count(80, 30)
    probes = settings.count(100, 40)
    await talk(server, 10, 1)  # the first requests' imports and caches are not per client
    await healthz(server, 10)
    # streams: the base over the same whole window, to tell the heartbeats from the rest
    base_cpu = await idle_cpu(server, window if streams else settings.pick(3.0, 1.0))
    base_rss = server.rss_mib()
    run = Run(name, kind, base_rss, base_cpu, [], heartbeat, server.threads_count())
    if name == "pairchat":
        run.capacity = capacity_logged(server)
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
            phases = ["held"] if streams else ["just held"]
            if level == levels[-1] and not settings.quick and not streams:
                phases.append("steady")
            for phase in phases:
                if phase == "steady":
                    # every client's first (shorter) wait has ended and its next request,
                    # asking for HOLD_WAIT, is held: from now on a wait that ends is asked
                    # again unchanged, as it is for clients that stay online
                    settle = began + ramp + HOLD_WAIT + 2 - time.perf_counter()
                    await asyncio.sleep(max(0.0, settle))
                step = await measure(
                    server, swarm, level, phase, window, probes, messages, talk, streams
                )
                step.ramp, step.errors = ramp, step.errors + failed
                failed = 0
                run.steps.append(step)
                rate = "heartbeats" if streams else "re-polls"
                print(
                    f"  (g) {name} {kind} {level:,} {phase}: held {step.opened:,}, "
                    f"cpu {step.cpu:.2f}% ({step.repolls:.0f} {rate}/s), "
                    f"rss {step.rss:.0f} MiB, p99 {step.watch.p(99) * 1000:.1f} ms, "
                    f"missed {step.missed}, /healthz p99 {_p99(step.health) * 1000:.1f} ms, "
                    f"ramp {ramp:.1f} s, threads {step.threads}",
                    file=sys.stderr,
                    flush=True,
                )
    finally:
        await swarm.close_all()
    return run


async def run(settings: Settings, kinds: tuple[str, ...] = KINDS) -> list[Table]:
    levels = [1000, 2000] if settings.quick else [1000, 2000, 5000, 10000]
    stream_levels = [1000, 2000] if settings.quick else STREAM_LEVELS
    top = levels[-1]
    most = max(stream_levels[-1] if "events" in kinds else 0, top)
    raise_fd_limit(2 * most + 4 * HEADROOM)  # up to the hard limit; the servers inherit it
    waiters = top + HEADROOM
    runs: dict[str, list[Run]] = {kind: [] for kind in kinds}
    tables: list[Table] = []
    with Swarm(SWARM_PROCESSES, most) as swarm:
        for kind in kinds:
            started = time.perf_counter()
            if kind == "events":
                runs[kind] = await _streams(settings, swarm, stream_levels)
                tables.append(_stream_table(runs[kind], time.perf_counter() - started))
                continue
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
            tables.append(_table(runs[kind], kind, waiters, time.perf_counter() - started))
    return tables


async def _streams(settings: Settings, swarm: Swarm, levels: list[int]) -> list[Run]:
    """``events``: pairchat (default capacity) then the ceiling, each through ``levels``; then
    (full runs) both again at the first level with a FAST_HEARTBEAT: the cost of a heartbeat."""
    folder = settings.data_dir("scale-events")
    seeded = seed_accounts(folder, levels[-1], STREAM_CHAT)
    items, chat_tokens = seeded[: -len(STREAM_CHAT)], dict(seeded[-len(STREAM_CHAT) :])
    ours = events_chat((chat_tokens[STREAM_CHAT[0]], chat_tokens[STREAM_CHAT[1]]))
    theirs = events_chat((None, STREAM_CHAT[1]))  # the ceiling's token is its user's name
    passes = [(HEARTBEAT, levels)]
    if not settings.quick:
        passes.append((FAST_HEARTBEAT, levels[:1]))
    found: list[Run] = []
    for heartbeat, steps in passes:
        env = {**ROOMY_LIMITS, "PAIRCHAT_STREAM_HEARTBEAT": f"{heartbeat:g}"}
        with Server(folder, env=env) as pairchat:  # no capacity flag: the default holds them
            mine = await hold_steps(
                pairchat, swarm, "pairchat", "events", items, steps, settings, ours, heartbeat
            )
        ceiling_dir = settings.data_dir(f"scale-events-ceiling-{heartbeat:g}")
        with Ceiling(ceiling_dir, env=env) as ceiling:
            other = await hold_steps(
                ceiling, swarm, "ceiling", "events", items, steps, settings, theirs, heartbeat
            )
        if found:
            found[0].extra.append(mine)
            found[1].extra.append(other)
        else:
            found = [mine, other]
    return found


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
    table.note(f"both servers measured in {seconds:.0f} s")
    return table


def _stream_table(runs: list[Run], seconds: float) -> Table:
    """``events``: the rows of each level, targets of issue 21 on pairchat's rows."""
    table = Table(
        "(g) Held event streams (GET /events) while one pair chats",
        [
            "held",
            "server",
            "delivery p50",
            "p99",
            "missed",
            "idle CPU (heartbeats)",
            "RSS",
            "per stream",
            "/healthz p99",
            "target",
            "result",
        ],
    )
    by_name = {r.server: r for r in runs}
    ours, theirs = by_name.get("pairchat"), by_name.get("ceiling")
    if ours is None or theirs is None:
        return table
    pairs = [(ours, theirs), *zip(ours.extra, theirs.extra, strict=True)]
    first = ours.steps[0].held if ours.steps else 0
    for mine, other in pairs:
        fast = mine.heartbeat != HEARTBEAT
        ceiling_steps = {s.held: s for s in other.steps}
        for step in mine.steps:
            theirs_step = ceiling_steps.get(step.held)
            held = f"{step.held:,}" + (f", heartbeat {mine.heartbeat:g} s" if fast else "")
            cells = _stream_cells(step, held, "pairchat", mine.base_rss)
            cpu_ratio = (
                step.cpu / theirs_step.cpu if theirs_step and theirs_step.cpu else float("nan")
            )
            if fast:
                table.add(*cells)
            else:
                label = f"{step.held:,} streams"
                checks = [
                    ("p50", f"{label}: delivery p50", step.watch.p(50) * 1000, STREAM_P50),
                    ("p99", f"{label}: delivery p99", step.watch.p(99) * 1000, STREAM_P99),
                    ("missed", f"{label}: missed deliveries", float(step.missed), TARGET_MISSED),
                ]
                if step.held == first:
                    checks.append(("CPU", f"{label}: idle server CPU", step.cpu, STREAM_CPU))
                checks += [
                    (
                        "per stream",
                        f"{label}: memory per stream",
                        step.per_client_kib(mine.base_rss),
                        STREAM_KIB,
                    ),
                    (
                        "CPU vs ceiling",
                        f"{label}: idle CPU / ceiling's",
                        cpu_ratio,
                        STREAM_CPU_RATIO,
                    ),
                ]
                table.check_many(*cells, checks=checks)
            if theirs_step is None:
                continue
            table.add(*_stream_cells(theirs_step, held, "ceiling", other.base_rss))
            table.add(
                "",
                "pairchat / ceiling",
                _ratio(step.watch.p(50), theirs_step.watch.p(50)),
                _ratio(step.watch.p(99), theirs_step.watch.p(99)),
                "",
                ratio(cpu_ratio),
                _ratio(step.rss, theirs_step.rss),
                _ratio(
                    step.per_client_kib(mine.base_rss), theirs_step.per_client_kib(other.base_rss)
                ),
                _ratio(_p99(step.health), _p99(theirs_step.health)),
            )
    window = ours.steps[0].window if ours.steps else 2 * HEARTBEAT
    table.note(
        f"clients: one GET /events stream each (own account and bearer token), held by "
        f"bench/swarm.py ({SWARM_PROCESSES} processes, raw keep-alive sockets, chunked SSE "
        "decoded, keep-alive comments read and dropped, never reconnecting unless the stream "
        "ends); added in steps on the same server process"
    )
    table.note(
        f"pairchat: pairchat-server --open, 1 worker, no capacity flag (it logged: holding up "
        f"to {ours.capacity or '?'}), PAIRCHAT_STREAM_HEARTBEAT {HEARTBEAT:g} s; the send rate "
        "limit raised for the chat (bench/server.py ROOMY_LIMITS). ceiling: bench/ceiling.py "
        "(aiohttp on uvloop, a future per stream, the heartbeat on a shared one-second tick, "
        "no storage, no auth)"
    )
    table.note(
        f"idle CPU: the server's process tree over {window:g} s (whole heartbeat periods) with "
        "nothing sent, in % of one core, and the keep-alive comments the swarm read per second "
        "in that window; RSS: the process tree; per stream = (RSS - RSS with none held) / held"
    )
    table.note(
        f"delivery: {STREAM_CHAT[0]} sends to {STREAM_CHAT[1]}, a message every "
        f"{GAP * 1000:.0f} ms; the receiver holds its own GET /events stream and a message is "
        "seen when a feed event naming the sender with last_id >= its id is read (the "
        "notice; a client then reads the message with one history request); missed = never "
        "seen 5 s after the last send"
    )
    for r in runs:
        for one in [r, *r.extra]:
            details = ", ".join(
                f"{s.held:,}: {s.opened:,} held, ramp {s.ramp:.1f} s, {s.errors} errors, "
                f"{s.reconnects} reconnects, {s.ended} ended, {s.threads} threads"
                for s in one.steps
            )
            table.note(
                f"{one.server} (heartbeat {one.heartbeat:g} s): none held {fmt(one.base_rss)} "
                f"MiB, idle CPU {fmt(one.base_cpu)}%, {one.base_threads} threads; {details}"
            )
    for mine, other in pairs[1:]:
        for name, slow, fast in ((ours.server, ours, mine), (theirs.server, theirs, other)):
            cost = _heartbeat_cost(slow, fast)
            if cost is not None:
                table.note(
                    f"{name}: one heartbeat costs {fmt(cost * 1e6)} µs of CPU "
                    f"(idle CPU at heartbeat {fast.heartbeat:g} s minus at {slow.heartbeat:g} s, "
                    f"over the heartbeats per second they differ by, at {fast.steps[0].held:,})"
                )
    table.note(f"both servers measured in {seconds:.0f} s")
    return table


def _heartbeat_cost(slow: Run, fast: Run) -> float | None:
    """CPU seconds per heartbeat: the CPU difference over the heartbeat-rate difference."""
    if not fast.steps:
        return None
    quick = fast.steps[0]
    same = next((s for s in slow.steps if s.held == quick.held), None)
    if same is None or quick.repolls <= same.repolls:
        return None
    return (quick.cpu - same.cpu) / 100 / (quick.repolls - same.repolls)


def _stream_cells(step: Step, held: str, server: str, base_rss: float) -> list[str]:
    return [
        held,
        server,
        ms(step.watch.p(50)),
        ms(step.watch.p(99)),
        str(step.missed),
        f"{fmt(step.cpu)}% ({step.repolls:.0f}/s)",
        f"{fmt(step.rss)} MiB",
        f"{fmt(step.per_client_kib(base_rss))} KiB",
        ms(_p99(step.health)),
    ]


def main(argv: list[str] | None = None) -> None:
    """``python -m bench.scale``: (g) alone, or some of its kinds."""
    parser = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__)
    parser.add_argument("--kinds", default=",".join(KINDS), help="of history,updates,events")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args(argv)
    kinds = tuple(k.strip() for k in args.kinds.split(",") if k.strip())
    if not kinds or set(kinds) - set(KINDS):
        parser.error(f"--kinds: choose from {','.join(KINDS)}")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="pairchat-bench-") as workdir:
        tables = asyncio.run(run(Settings(Path(workdir), quick=args.quick), kinds))
    for table in tables:
        print(table.render(args.markdown), end="\n\n", flush=True)
    print(summary(tables, args.markdown))
    print(f"\ntotal {time.perf_counter() - started:.0f} s")


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


if __name__ == "__main__":
    main()
