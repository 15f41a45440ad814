"""Issue 13 (j): the cluster on one machine — sends/s through the router, held clients per node.

Two clusters of ``deploy/cluster/up.sh`` (PostgreSQL, Redis, HAProxy, Litestream and
1, then 3 pairchat nodes, all on 127.0.0.1), one after the other, each in its own
folder and torn down (``down.sh``) before the next; and, as the baseline of the same
run, one plain ``pairchat-server serve`` (one box, SQLite only) without a router.

1. **Sends/s**: 60 accounts in 30 pairs; 30 senders (one keep-alive connection per
   author, asyncio ``bench/client.py``), each sending to its pair as fast as replies
   come back, both ways in turn, for a fixed time. Rate, latency p50/p99, errors, and
   the ratios to the one box and 3 nodes / 1 node.
2. **Held clients** (the 3-node cluster): ``/updates?since=&wait=`` long-polls with
   their own accounts' bearer tokens, held through the router by ``bench/swarm.py``
   (the harness of (g)); the router spreads them round robin over the nodes. One pair
   chats meanwhile: the receiver holds ``/updates`` directly on every node at once
   (and one more through the router), so a wake-up on the pair's owner (same node)
   and on the others (across nodes, through Redis) are timed side by side.
   Held per node (connections open to the node), RSS of each node's process tree.

All processes share this machine's cores: the bench's own client and harness too.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench import api
from bench.client import Connection, HttpError
from bench.idle import HOLD_WAIT
from bench.report import Table, fmt, ms, ratio
from bench.scale import TARGET_MISSED, TARGET_P50, TARGET_P99  # (g)'s: a wake-up across nodes
from bench.server import (
    FAST_ARGON2,
    REPO,
    ROOMY_LIMITS,
    Server,
    _children,
    _cpu_seconds,
    _rss_kib,
)
from bench.settings import Settings
from bench.stats import percentile
from bench.swarm import Swarm, raise_fd_limit

SCRIPTS = REPO / "deploy" / "cluster"
PAIRS = 30
SENDERS_PER_PAIR = 2  # one connection per author
CHAT = ("chatter", "listener")
GAP = 0.05
SWARM_PROCESSES = 2
HEADROOM = 256
NODE_ENV = {
    **FAST_ARGON2,
    **ROOMY_LIMITS,
    "PAIRCHAT_MIN_FREE_DISK_MB": "0",
    "PAIRCHAT_MAX_WAITS_PER_USER": "16",
}
"""tests/support.py's TEST_ENV (cheap argon2id, roomy limits), plus room for the chat's
receiver to hold a wait on every node at once."""


# -- the processes ---------------------------------------------------------------------
class Cluster:
    """``up.sh DIR NODES`` … ``down.sh DIR``; use as a context manager (the cluster tests'
    fixture runs its cluster with it too)."""

    def __init__(self, folder: Path, nodes: int, env: dict[str, str]) -> None:
        self.dir = folder
        self.nodes = nodes
        self.env = {**os.environ, **env, "UV_PYTHON_DOWNLOADS": "never"}
        self.router_port = 0
        self.pids: dict[int, int] = {}
        self.ports: dict[int, int] = {}

    def script(self, name: str, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
        """``deploy/cluster/NAME DIR ARGS…`` with this cluster's environment."""
        return subprocess.run(
            ["bash", str(SCRIPTS / name), str(self.dir), *args],
            capture_output=True,
            text=True,
            env=self.env,
            timeout=timeout,
            check=False,
        )

    def __enter__(self) -> Cluster:
        self.dir.mkdir(parents=True, exist_ok=True)
        done = self.script("up.sh", str(self.nodes), timeout=600)
        if done.returncode != 0:
            self.__exit__()
            raise RuntimeError(f"up.sh failed:\n{done.stdout}\n{done.stderr[-3000:]}")
        router = re.search(r"^ROUTER_URL=http://127\.0\.0\.1:(\d+)$", done.stdout, re.M)
        assert router, done.stdout
        self.router_port = int(router[1])
        self.pids = {
            int(n): int(p) for n, p in re.findall(r"^NODE(\d+)_PID=(\d+)$", done.stdout, re.M)
        }
        env_text = (self.dir / "cluster.env").read_text()
        self.ports = {
            int(n): int(p) for n, p in re.findall(r"^NODE(\d+)_PORT=(\d+)$", env_text, re.M)
        }
        return self

    def __exit__(self, *exc: object) -> None:
        pg = self.dir / "postgres"
        target = pg.resolve() if pg.is_symlink() else None
        self.script("down.sh", timeout=180)
        if target is not None and str(target).startswith("/tmp/pairchat-pg."):
            shutil.rmtree(target, ignore_errors=True)  # the folder up.sh made for PostgreSQL

    def rss_mib(self, n: int) -> float:
        """VmRSS of node ``n``'s main process and its workers (its children), in MiB."""
        pids = [self.pids[n], *_tree(self.pids[n])]
        return sum(_rss_kib(pid) for pid in pids) / 1024

    def cpu(self) -> dict[str, float]:
        """CPU seconds so far of each kind of process (its whole process tree): nodes,
        litestream, haproxy, redis, postgres (the postmaster and its backends)."""
        found: dict[str, float] = {}
        for pid_file in (self.dir / "pids").glob("*.pid"):
            with contextlib.suppress(ValueError, OSError):
                pid = int(pid_file.read_text().split()[0])
                kind = pid_file.stem.rstrip("0123456789")
                seconds = sum(_cpu_seconds(p) for p in [pid, *_tree(pid)])
                found[kind] = found.get(kind, 0.0) + seconds
        return found

    def rss_by_kind(self) -> dict[str, float]:
        """Pss in MiB (shared pages divided among their sharers: PostgreSQL's shared memory
        once) of each kind of process but the nodes (haproxy, postgres, redis, …)."""
        found: dict[str, float] = {}
        for pid_file in (self.dir / "pids").glob("*.pid"):
            with contextlib.suppress(ValueError, OSError):
                pid = int(pid_file.read_text().split()[0])
                kind = pid_file.stem.rstrip("0123456789")
                if kind != "node":
                    kib = sum(_pss_kib(p) for p in [pid, *_tree(pid)])
                    found[kind] = found.get(kind, 0.0) + kib / 1024
        return found

    def connections(self) -> dict[int, int]:
        """Established TCP connections to each node's port (the router's, held ones included)."""
        by_port = {port: n for n, port in self.ports.items()}
        counts = dict.fromkeys(self.ports, 0)
        for name in ("/proc/net/tcp", "/proc/net/tcp6"):
            with contextlib.suppress(FileNotFoundError):
                for line in Path(name).read_text().splitlines()[1:]:
                    fields = line.split()
                    port = int(fields[1].rsplit(":", 1)[1], 16)
                    if fields[3] == "01" and port in by_port:
                        counts[by_port[port]] += 1
        return counts


def _pss_kib(pid: int) -> int:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    return 0


def _tree(pid: int) -> list[int]:
    found = []
    for child in _children(pid):
        found += [child, *_tree(child)]
    return found


CpuProbe = Callable[[], dict[str, float]]


# -- sends/s ---------------------------------------------------------------------------
@dataclass
class Sends:
    where: str
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    cpu: dict[str, float] = field(default_factory=dict)  # % of one core, by process kind
    alone: list[float] = field(default_factory=list)  # latencies of one sender on its own

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else float("nan")


def pair_names() -> list[tuple[str, str]]:
    return [(f"s{i}a", f"s{i}b") for i in range(PAIRS)]


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def send_load(
    where: str,
    port: int,
    tokens: dict[str, str],
    seconds: float,
    cpu: CpuProbe,
    senders: int = PAIRS * SENDERS_PER_PAIR,
) -> Sends:
    """Every author of every pair sends to its peer, one request at a time, for ``seconds``."""
    result = Sends(where)
    authors = [(a, b) for a, b in pair_names()] + [(b, a) for a, b in pair_names()]
    authors = authors[:senders]
    conns = [Connection("127.0.0.1", port, tokens[a]) for a, _ in authors]
    # warm-up: every pair exists (placed on its owner) and every connection is open
    for conn, (a, b) in zip(conns, authors, strict=True):
        await api.send(conn, a, b, f"warm-up {a}")
    deadline = time.perf_counter() + seconds

    async def one(conn: Connection, author: str, peer: str) -> None:
        k = 0
        while time.perf_counter() < deadline:
            k += 1
            began = time.perf_counter()
            try:
                await api.send(conn, author, peer, f"load {author} {k}")
            except (HttpError, ConnectionError, OSError, asyncio.IncompleteReadError):
                result.errors += 1
                await asyncio.sleep(0.05)
                continue
            result.latencies.append(time.perf_counter() - began)

    began, before = time.perf_counter(), {**cpu(), "load (this bench)": _own_cpu()}
    try:
        await asyncio.gather(*(one(c, a, b) for c, (a, b) in zip(conns, authors, strict=True)))
    finally:
        result.seconds = time.perf_counter() - began
        after = {**cpu(), "load (this bench)": _own_cpu()}
        result.cpu = {
            kind: 100 * (after[kind] - before.get(kind, 0.0)) / result.seconds for kind in after
        }
        for conn in conns:
            await conn.close()
    return result


async def register(port: int, names: list[str], concurrency: int = 8) -> dict[str, str]:
    return await api.register_many("127.0.0.1", port, names, concurrency)


def _users() -> list[str]:
    return [name for pair in pair_names() for name in pair]


# -- held clients and cross-node delivery -----------------------------------------------------
@dataclass
class Held:
    held: int = 0
    opened: int = 0
    failed: int = 0
    ramp: float = 0.0
    errors: int = 0
    reconnects: int = 0
    per_node: dict[int, int] = field(default_factory=dict)
    base_conns: dict[int, int] = field(default_factory=dict)
    others_rss: dict[str, float] = field(default_factory=dict)
    others_base_rss: dict[str, float] = field(default_factory=dict)
    rss: dict[int, float] = field(default_factory=dict)
    base_rss: dict[int, float] = field(default_factory=dict)
    owner: int = 0
    sent: dict[int, float] = field(default_factory=dict)  # message id -> send began
    events: dict[str, list[tuple[float, int]]] = field(default_factory=dict)  # (when, last_id)
    messages: int = 0

    def seen(self, receiver: str) -> dict[int, float]:
        """Message id -> when ``receiver``'s feed first named a last_id that far."""
        found: dict[int, float] = {}
        for message_id, began in self.sent.items():
            for when, last in self.events.get(receiver, []):
                if last >= message_id and when >= began:
                    found[message_id] = when
                    break
        return found

    def latencies(self, receivers: list[str]) -> list[float]:
        out = []
        for r in receivers:
            out += [when - self.sent[i] for i, when in self.seen(r).items()]
        return out

    def missed(self, receivers: list[str]) -> int:
        return sum(len(self.sent) - len(self.seen(r)) for r in receivers)


async def owner_of(cluster: Cluster, token: str, one: str, two: str) -> int:
    """The node that answers the pair's history (the others refuse with a 503)."""
    for n, port in cluster.ports.items():
        conn = Connection("127.0.0.1", port, token)
        try:
            reply = await conn.post(
                "/get_message_history", {"user_one": one, "user_two": two, "limit": 1}, expect=0
            )
        finally:
            await conn.close()
        if reply.status == 200:
            return n
    raise RuntimeError("no node owns the chat pair")


async def feed_receiver(
    conn: Connection, name: str, held: Held, stop: asyncio.Event, peer: str
) -> None:
    """Hold ``/updates`` on ``conn``; note when each message id of ``peer`` is first seen."""
    events = held.events.setdefault(name, [])
    cursor = (await conn.get("/updates")).json()["cursor"]
    while not stop.is_set():
        reply = (await conn.get(f"/updates?since={cursor}&wait=25")).json()
        now = time.perf_counter()
        cursor = reply["cursor"]
        for contact in reply["changed"]:
            if contact["username"] == peer:
                events.append((now, int(contact["last_id"])))


async def chat(cluster: Cluster, tokens: dict[str, str], held: Held, count: int) -> None:
    """CHAT[0] sends ``count`` messages through the router; CHAT[1] watches on every node."""
    author, reader = CHAT
    router_send = Connection("127.0.0.1", cluster.router_port, tokens[author])
    await api.send(router_send, author, reader, "hello")  # the pair is placed
    held.owner = await owner_of(cluster, tokens[author], author, reader)
    receivers = {f"node{n}": port for n, port in cluster.ports.items()}
    receivers["router"] = cluster.router_port
    conns = {
        name: Connection("127.0.0.1", port, tokens[reader]) for name, port in receivers.items()
    }
    stop = asyncio.Event()
    tasks = [
        asyncio.create_task(feed_receiver(conn, name, held, stop, author))
        for name, conn in conns.items()
    ]
    try:
        await asyncio.sleep(0.5)  # every receiver's wait is held
        for k in range(count):
            await asyncio.sleep(GAP)
            began = time.perf_counter()
            reply = await router_send.post(
                f"/send_message/{reader}", {"author": author, "message": f"probe {k}"}
            )
            held.sent[int(reply.json()["id"])] = began
        held.messages = count
        deadline = time.perf_counter() + 5
        while time.perf_counter() < deadline and any(len(held.seen(r)) < count for r in conns):
            await asyncio.sleep(0.1)
    finally:
        stop.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for conn in [router_send, *conns.values()]:
            await conn.close()


async def hold(cluster: Cluster, settings: Settings, count: int) -> Held:
    held = Held(held=count)
    names = [f"held{i}" for i in range(count)]
    began = time.perf_counter()
    tokens = await register(cluster.router_port, [*names, *CHAT])
    print(
        f"  (j) registered {len(tokens):,} accounts in {time.perf_counter() - began:.0f} s",
        file=sys.stderr,
        flush=True,
    )
    held.base_rss = {n: cluster.rss_mib(n) for n in cluster.pids}
    held.base_conns = cluster.connections()
    held.others_base_rss = cluster.rss_by_kind()
    items = [(name, tokens[name]) for name in names]
    with Swarm(SWARM_PROCESSES, count) as swarm:
        began = time.perf_counter()
        held.opened, held.failed = await swarm.open(
            "updates", "127.0.0.1", cluster.router_port, items, HOLD_WAIT
        )
        deadline = time.perf_counter() + 30
        while (await swarm.counters()).outstanding < count and time.perf_counter() < deadline:
            await asyncio.sleep(0.2)
        held.ramp = time.perf_counter() - began
        await asyncio.sleep(1.0)
        now = cluster.connections()
        held.per_node = {n: now[n] - held.base_conns.get(n, 0) for n in now}
        held.rss = {n: cluster.rss_mib(n) for n in cluster.pids}
        held.others_rss = cluster.rss_by_kind()
        await chat(cluster, tokens, held, settings.count(100, 40))
        for n in cluster.pids:
            held.rss[n] = max(held.rss[n], cluster.rss_mib(n))
        counters = await swarm.counters()
        held.errors, held.reconnects = counters.errors, counters.reconnects
        print(
            f"  (j) held {counters.outstanding:,} through the router; per node {held.per_node}",
            file=sys.stderr,
            flush=True,
        )
        await swarm.close_all()
    return held


# -- the run ---------------------------------------------------------------------------
async def run(settings: Settings) -> list[Table]:
    seconds = settings.pick(10.0, 4.0)
    top = settings.count(3000, 600)
    raise_fd_limit(4 * top + 4 * HEADROOM)  # up.sh, HAProxy and the nodes inherit it
    env = {
        **NODE_ENV,
        "PAIRCHAT_MAX_WAITERS": str(top + HEADROOM),
        "PAIRCHAT_THREADS": str(max(1100, top // 3 + 2 * HEADROOM)),
    }
    started = time.perf_counter()
    results: list[Sends] = []

    with Server(settings.data_dir("cluster-one-box"), open_mode=False, env={**NODE_ENV}) as box:
        tokens = await register(box.port, _users())

        def box_cpu() -> dict[str, float]:
            return {"pairchat-server": _cpu_seconds(box.pid) + box.cpu_seconds()}

        results.append(
            await send_load("one box (no router, SQLite)", box.port, tokens, seconds, box_cpu)
        )
        alone = await send_load("", box.port, tokens, seconds / 4, box_cpu, senders=1)
        results[-1].alone = alone.latencies
    _progress(results[-1])
    held: Held | None = None
    for nodes in (1, 3):
        with Cluster(settings.workdir / f"cluster-{nodes}", nodes, env) as cluster:
            tokens = await register(cluster.router_port, _users())
            where = f"{nodes} node{'s' if nodes > 1 else ''} + router + PostgreSQL + Redis"
            results.append(
                await send_load(where, cluster.router_port, tokens, seconds, cluster.cpu)
            )
            alone = await send_load(
                "", cluster.router_port, tokens, seconds / 4, cluster.cpu, senders=1
            )
            results[-1].alone = alone.latencies
            _progress(results[-1])
            if nodes == 3:
                held = await hold(cluster, settings, top)
    assert held is not None
    took = time.perf_counter() - started
    return [_sends_table(results, seconds, took), _held_table(held, top)]


def _progress(sends: Sends) -> None:
    print(
        f"  (j) {sends.where}: {sends.rate:.0f} sends/s, p50 "
        f"{percentile(sends.latencies, 50) * 1000:.1f} ms, {sends.errors} errors",
        file=sys.stderr,
        flush=True,
    )


def _sends_table(results: list[Sends], seconds: float, took: float) -> Table:
    table = Table(
        "(j) Sends/s through the router: 1 node, 3 nodes, and one box without a router",
        [
            "setup",
            "sends",
            "sends/s",
            "p50",
            "p99",
            "errors",
            "vs one box",
            "vs 1 node",
            "1 sender alone: p50",
        ],
    )
    base, one = results[0], results[1]
    for sends in results:
        table.add(
            sends.where,
            f"{len(sends.latencies):,}",
            fmt(sends.rate),
            ms(percentile(sends.latencies, 50)),
            ms(percentile(sends.latencies, 99)),
            str(sends.errors),
            ratio(sends.rate / base.rate),
            "" if sends is base else ratio(sends.rate / one.rate),
            ms(percentile(sends.alone, 50)),
        )
    table.note(
        f"{PAIRS} pairs of accounts (bearer tokens), {PAIRS * SENDERS_PER_PAIR} senders (one "
        f"keep-alive connection per author, bench/client.py), each sending as soon as its "
        f"last send was answered, for {seconds:g} s after one warm-up send each; then one "
        f"sender alone for {seconds / 4:g} s (the latency of a send with no queue)"
    )
    table.note(
        "one box: pairchat-server serve (1 worker, SQLite); cluster: deploy/cluster/up.sh "
        "(HAProxy with a log line per request, PostgreSQL 15, Redis, Litestream per node, "
        "1 worker per node); nodes and box with tests/support.py's TEST_ENV (cheap argon2id, "
        "roomy limits); every process — and the load — on this machine's "
        f"{os.cpu_count()} cores"
    )
    for sends in results:
        shares = ", ".join(
            f"{kind} {value:.0f}%" for kind, value in sorted(sends.cpu.items(), key=lambda i: -i[1])
        )
        total = sum(sends.cpu.values())
        table.note(
            f"CPU during the sends, {sends.where}: {shares} (total {total:.0f}% of one core)"
        )
    table.note(f"the three setups measured one after another in {took:.0f} s (with (j) held)")
    return table


def _held_table(held: Held, top: int) -> Table:
    table = Table(
        f"(j) {top:,} held /updates clients through the router, 3 nodes, one pair chatting",
        [
            "node",
            "held",
            "RSS",
            "RSS none held",
            "receiver on it",
            "p50",
            "p99",
            "missed",
            "target",
            "result",
        ],
    )
    for n in sorted(held.rss):
        name = f"node{n}"
        role = "owner: same node" if n == held.owner else "other: across nodes (Redis)"
        lat = held.latencies([name])
        table.add(
            name,
            f"{held.per_node.get(n, 0):,}",
            f"{fmt(held.rss[n])} MiB",
            f"{fmt(held.base_rss.get(n, float('nan')))} MiB",
            role,
            ms(percentile(lat, 50)),
            ms(percentile(lat, 99)),
            str(held.missed([name])),
        )
    others = [f"node{n}" for n in held.rss if n != held.owner]
    cross = held.latencies(others)
    label = f"{top:,} held, 3 nodes: cross-node wake-up"
    table.check_many(
        "all nodes",
        f"{sum(held.per_node.values()):,}",
        f"{fmt(sum(held.rss.values()))} MiB",
        f"{fmt(sum(held.base_rss.values()))} MiB",
        "the other nodes, together",
        ms(percentile(cross, 50)),
        ms(percentile(cross, 99)),
        str(held.missed(others)),
        checks=[
            ("p50", f"{label} p50", percentile(cross, 50) * 1000, TARGET_P50),
            ("p99", f"{label} p99", percentile(cross, 99) * 1000, TARGET_P99),
            ("missed", f"{label}: missed", float(held.missed(others)), TARGET_MISSED),
        ],
    )
    lat = held.latencies(["router"])
    table.add(
        "router",
        "",
        "",
        "",
        "through the router (any node)",
        ms(percentile(lat, 50)),
        ms(percentile(lat, 99)),
        str(held.missed(["router"])),
    )
    table.note(
        f"held: {held.opened:,} opened ({held.failed} failed) by bench/swarm.py "
        f"({SWARM_PROCESSES} processes, raw keep-alive sockets) through the router, each its own "
        f"account's GET /updates?since=&wait={HOLD_WAIT} (first wait 1-{HOLD_WAIT} s), "
        f"all held after {held.ramp:.1f} s; {held.errors} error replies, "
        f"{held.reconnects} reconnects; HAProxy spreads them round robin (backend any)"
    )
    table.note(
        "held: established TCP connections to the node's port (from /proc/net/tcp) minus "
        "those open before the clients came (the router's idle keep-alive ones); RSS: VmRSS "
        "of the node's main process and its children (granian worker), RSS none held: "
        "before the clients came (after the sends of the first table)"
    )
    table.note(
        "memory (Pss) of the rest, none held -> held: "
        + ", ".join(
            f"{kind} {fmt(held.others_base_rss.get(kind, float('nan')))} -> {fmt(value)} MiB"
            for kind, value in sorted(held.others_rss.items())
        )
        + " (postgres: the postmaster and its backends)"
    )
    table.note(
        f"chat: {held.messages} messages, one every {GAP * 1000:.0f} ms, sent through the "
        "router to the pair's owner; the receiver holds GET /updates?wait=25 on every node "
        "directly, and one more through the router, at the same time; latency: send began -> "
        "the receiver's feed names a last_id >= the message's id; missed: not seen 5 s after "
        "the last send"
    )
    return table
