"""The cluster on one machine (issue 13): real PostgreSQL, Redis, HAProxy, Litestream, 3 nodes.

``deploy/cluster/up.sh`` starts it all; seed-style (form-encoded) and JSON traffic,
and the TUI's own client, go through the router only — no client knows about
nodes. A node is killed mid-load; the test proves that no acknowledged message is
lost, no pair is ever served by two nodes, the dead node's pairs answer 503 until it
is back or failed over, and every other pair is unaffected. Failover
(``failover.sh``: fence, restore from Litestream, reassign, re-point the router) and
moving one pair (``move.sh``) are run as an operator would.

CI runs a short load; ``PAIRCHAT_SOAK=1`` (``just soak``) a longer one.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import re
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from bench.cluster import Cluster as ClusterProcesses
from tests.sse import open_stream
from tests.support import REPO, TEST_ENV, alive
from tui.client.http import ApiError, PairchatClient, ServerUnreachable

pytestmark = [pytest.mark.live, pytest.mark.slow]  # `just soak` runs the long load
SOAK = os.environ.get("PAIRCHAT_SOAK") == "1"
LOAD_SECONDS = 20.0 if SOAK else 2.0
AFTER_KILL_SECONDS = 20.0 if SOAK else 3.0
SCRIPTS = REPO / "deploy" / "cluster"
USERS = [f"user{n}" for n in range(12)]
PASSWORD = "correct horse"


@dataclass
class Cluster:
    """The running cluster as the tests use it: ``bench.cluster.Cluster`` runs up.sh/down.sh."""

    processes: ClusterProcesses
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def dir(self) -> Path:
        return self.processes.dir

    @property
    def router(self) -> str:
        return f"http://127.0.0.1:{self.processes.router_port}"

    @property
    def pids(self) -> dict[int, int]:
        return self.processes.pids

    @property
    def env(self) -> dict[str, str]:
        return self.processes.env

    def script(self, name: str, *args: str, timeout: float = 180) -> str:
        done = self.processes.script(name, *args, timeout=timeout)
        assert done.returncode == 0, f"{name} {args}: {done.stdout}\n{done.stderr}"
        return done.stdout

    def node(self, number: int, action: str) -> None:
        out = self.script("node.sh", str(number), action)
        found = re.search(rf"^NODE{number}_PID=(\d+)$", out, re.M)
        if action == "start":
            assert found, out
            self.pids[number] = int(found[1])

    @property
    def database_url(self) -> str:
        text = (self.dir / "cluster.env").read_text()
        found = re.search(r"(postgresql://\S+)", text)
        assert found, f"no database URL in cluster.env: {text}"
        return found[1].strip("'\"")

    def owner(self, pair: str) -> str:
        done = subprocess.run(
            [*PYTHON, "-m", "backend.server.cli", "placement", "owner", pair],
            capture_output=True,
            text=True,
            cwd=REPO,
            env={**self.env, "PAIRCHAT_DATABASE_URL": self.database_url},
            timeout=60,
            check=True,
        )
        return done.stdout.strip()

    def files(self, pair: str) -> list[int]:
        """The nodes whose data folder holds ``pair``'s file."""
        return sorted(
            n for n in self.pids if (self.dir / f"node{n}" / "data" / f"{pair}.db").exists()
        )


PYTHON = [str(REPO / ".venv" / "bin" / "python")]
PAIRS = [(USERS[i], USERS[(i + 1) % len(USERS)]) for i in range(len(USERS))]


def pair_of(a: str, b: str) -> str:
    return "_".join(sorted((a, b)))


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with ClusterProcesses(tmp_path_factory.mktemp("cluster"), 3, TEST_ENV) as processes:
        assert sorted(processes.pids) == [1, 2, 3], processes.pids
        running = Cluster(processes)
        for user in USERS:
            reply = httpx.post(
                f"{running.router}/register",
                data={"username": user, "password": PASSWORD},
                timeout=30,
            )
            assert reply.status_code in (200, 201), reply.text
            running.tokens[user] = reply.json()["token"]
        yield running


def auth(cluster: Cluster, user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {cluster.tokens[user]}"}


def client_id(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9-]", "-", text)[-64:]


def send_form(http: httpx.Client, cluster: Cluster, a: str, b: str, text: str) -> int:
    """The seed's way: form-encoded ``author`` + ``message``, the recipient in the path."""
    reply = http.post(
        f"{cluster.router}/send_message/{b}",
        data={"author": a, "message": text, "client_id": client_id(text)},
        headers=auth(cluster, a),
    )
    return reply.status_code


def send_json(http: httpx.Client, cluster: Cluster, a: str, b: str, text: str) -> int:
    reply = http.post(
        f"{cluster.router}/send_message/{b.upper()}",  # any spelling reaches the owner
        json={"author": a.capitalize(), "message": text, "client_id": client_id(text)},
        headers=auth(cluster, a),
    )
    return reply.status_code


def history_texts(cluster: Cluster, a: str, b: str) -> list[str]:
    reply = httpx.post(
        f"{cluster.router}/get_message_history",
        data={"user_one": a, "user_two": b},
        headers=auth(cluster, a),
        timeout=30,
    )
    assert reply.status_code == 200, reply.text
    return [m["message"] for m in reply.json()["history"]]


def placed(cluster: Cluster) -> dict[str, int]:
    """pair -> owning node number, after one message in every pair."""
    with httpx.Client(timeout=30) as http:
        for a, b in PAIRS:
            assert send_form(http, cluster, a, b, f"hello-{a}-{b}-{time.monotonic_ns()}") == 200
    owners = {
        pair_of(a, b): int(cluster.owner(pair_of(a, b)).removeprefix("node")) for a, b in PAIRS
    }
    return owners


def wait_replicated(cluster: Cluster, node: int, pair: str, messages: int) -> None:
    """Until ``pair``'s replica of ``node`` restores with ``messages`` messages (60 s at most)."""
    replica = cluster.dir / "replica" / f"node{node}" / f"{pair}.db"
    restored = cluster.dir / f"check-{pair}.db"
    deadline = time.monotonic() + 60
    count = -1
    while time.monotonic() < deadline:
        for leftover in cluster.dir.glob(f"check-{pair}.db*"):
            leftover.unlink()
        done = subprocess.run(
            [
                str(REPO / ".venv" / "bin" / "litestream"),
                "restore",
                "-o",
                str(restored),
                f"file://{replica}",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if done.returncode == 0:
            with contextlib.closing(sqlite3.connect(restored)) as db:
                count = db.execute("SELECT count(*) FROM conversation").fetchone()[0]
            if count >= messages:
                return
        time.sleep(0.5)
    raise AssertionError(f"{pair}'s replica has {count} of {messages} messages after 60 s")


@dataclass
class Outcome:
    acked: list[str] = field(default_factory=list)
    statuses: list[tuple[float, int]] = field(default_factory=list)


def load(
    cluster: Cluster, stop: threading.Event
) -> tuple[list[threading.Thread], dict[tuple[str, str], Outcome]]:
    """One thread per pair until ``stop``: even pairs send as the seed's clients do (form
    and JSON bodies in turn), odd pairs with the TUI's own client library."""
    outcomes = {pair: Outcome() for pair in PAIRS}
    counter = itertools.count()

    def record(outcome: Outcome, text: str, status: int) -> None:
        outcome.statuses.append((time.monotonic(), status))
        if status == 200:
            outcome.acked.append(text)

    def seed_client(a: str, b: str) -> None:
        outcome = outcomes[(a, b)]
        with httpx.Client(timeout=10) as http:
            while not stop.is_set():
                n = next(counter)
                text = f"load-{a}-{b}-{n}"
                try:
                    status = (send_form if n % 2 else send_json)(http, cluster, a, b, text)
                except httpx.TransportError:
                    status = 0
                record(outcome, text, status)
                time.sleep(0.02)

    async def tui_sends(a: str, b: str) -> None:
        outcome = outcomes[(a, b)]
        async with PairchatClient(cluster.router, cluster.tokens[a], username=a) as tui:
            while not stop.is_set():
                text = f"load-{a}-{b}-{next(counter)}"
                try:
                    await tui.send(b, text, client_id=client_id(text))
                    status = 200
                except ApiError as refused:
                    status = refused.status
                except ServerUnreachable:
                    status = 0
                record(outcome, text, status)
                await asyncio.sleep(0.02)

    def tui_client(a: str, b: str) -> None:
        asyncio.run(tui_sends(a, b))

    threads = [
        threading.Thread(target=tui_client if i % 2 else seed_client, args=pair, daemon=True)
        for i, pair in enumerate(PAIRS)
    ]
    for thread in threads:
        thread.start()
    return threads, outcomes


def test_a_killed_node_loses_nothing_and_harms_no_other_pair(cluster: Cluster) -> None:
    owners = placed(cluster)
    assert len(set(owners.values())) >= 2, f"12 pairs all on one node: {owners}"
    victim = max(set(owners.values()), key=lambda n: list(owners.values()).count(n))
    stop = threading.Event()
    threads, outcomes = load(cluster, stop)
    time.sleep(LOAD_SECONDS)
    cluster.node(victim, "kill")
    killed_at = time.monotonic()
    assert not alive(cluster.pids[victim])
    time.sleep(AFTER_KILL_SECONDS)
    stop.set()
    for thread in threads:
        thread.join(timeout=30)

    for (a, b), outcome in outcomes.items():
        pair = pair_of(a, b)
        after = [status for at, status in outcome.statuses if at > killed_at + 0.5]
        assert after, f"no requests for {pair} after the kill"
        if owners[pair] == victim:
            assert set(after) == {503}, f"{pair} on the dead node answered {set(after)}"
        else:
            assert set(after) == {200}, f"{pair} on a live node answered {set(after)}"
        # one owner, unchanged, and the file on that node only: never a second copy
        assert cluster.owner(pair) == f"node{owners[pair]}"
        assert cluster.files(pair) == [owners[pair]]

    cluster.node(victim, "start")
    for (a, b), outcome in outcomes.items():
        texts = history_texts(cluster, a, b)
        missing = [t for t in outcome.acked if t not in texts]
        assert not missing, f"acknowledged but lost in {pair_of(a, b)}: {missing[:5]}"
        doubled = [t for t in outcome.acked if texts.count(t) != 1]
        assert not doubled, f"stored twice: {doubled[:5]}"


def test_the_tui_client_works_through_the_router(cluster: Cluster, tmp_path: Path) -> None:
    """The TUI's own client library: sign in, send, send files, read the feed — nodes
    unseen."""
    upload = tmp_path / "notes.bin"
    upload.write_bytes(os.urandom(4096))

    async def session() -> None:
        async with PairchatClient(cluster.router) as alice:
            await alice.login("user0", PASSWORD)
            sent = await alice.send("user5", "through the router")
            assert sent.id > 0
            # files: the router places /send_file by the path and ?author= (it cannot read
            # a multipart body); first files to new contacts and one to a placed pair
            for peer in ("user8", "user9", "user10", "user5"):
                filed = await alice.send_file(peer, upload, "via the router")
                assert filed.attachment is not None and filed.attachment.size == 4096
        async with PairchatClient(cluster.router) as bob:
            await bob.login("user5", PASSWORD)
            listing = await bob.friends()
            assert listing is not None

    asyncio.run(session())
    assert "through the router" in history_texts(cluster, "user5", "user0")


def test_event_streams_on_every_node_get_sends_and_revocations_from_any(
    cluster: Cluster,
) -> None:
    """Six streams through the router (round robin: two per node); each gets the message
    sent to it whichever node owns the pair (Redis wake-ups), and a sign-out served by any
    node ends it."""
    tokens = {}
    for n in range(7):
        name = f"streamer{n}"
        reply = httpx.post(
            f"{cluster.router}/register", data={"username": name, "password": PASSWORD}
        )
        assert reply.status_code == 201, reply.text
        tokens[name] = reply.json()["token"]
    sender, *readers = sorted(tokens)
    with httpx.Client(timeout=15) as client, contextlib.ExitStack() as held:
        streams = {
            name: held.enter_context(open_stream(client, cluster.router, tokens[name]))
            for name in readers
        }
        for stream in streams.values():
            assert stream.next().kind == "feed"
        for name, stream in streams.items():
            reply = httpx.post(
                f"{cluster.router}/send_message/{name}",
                data={"author": sender, "message": f"to {name}"},
                headers={"Authorization": f"Bearer {tokens[sender]}"},
            )
            assert reply.status_code == 200, reply.text
            event = stream.next()
            assert [c["username"] for c in event.data["changed"]] == [sender], name
        for name, stream in streams.items():
            reply = httpx.post(
                f"{cluster.router}/logout", headers={"Authorization": f"Bearer {tokens[name]}"}
            )
            assert reply.status_code == 200
            end = stream.next()
            assert end.kind == "end" and end.data["reason"] == "unauthorized", name


def test_failover_restores_a_dead_nodes_pairs_on_another(cluster: Cluster) -> None:
    owners = placed(cluster)
    victim = max(set(owners.values()), key=lambda n: list(owners.values()).count(n))
    target = next(n for n in sorted(cluster.pids) if n != victim)
    mine = [(a, b) for a, b in PAIRS if owners[pair_of(a, b)] == victim]
    before = {(a, b): history_texts(cluster, a, b) for a, b in mine}
    for a, b in mine:  # Litestream ships the write-ahead log every second: wait for it
        wait_replicated(cluster, victim, pair_of(a, b), len(before[(a, b)]))
    cluster.node(victim, "kill")
    for a, b in mine:
        with httpx.Client(timeout=10) as http:
            assert send_form(http, cluster, a, b, "while dead") == 503
    cluster.script("failover.sh", str(victim), str(target))
    for a, b in mine:
        pair = pair_of(a, b)
        assert cluster.owner(pair) == f"node{target}"
        texts = history_texts(cluster, a, b)
        assert texts == before[(a, b)], f"{pair} after failover differs"
        with httpx.Client(timeout=10) as http:
            assert send_form(http, cluster, a, b, f"after failover {pair}") == 200
    # The dead node comes back fenced: it serves none of its old pairs, even when asked directly.
    cluster.node(victim, "start")
    port = cluster.processes.ports[victim]  # node.sh starts a node on its old port
    a, b = mine[0]
    direct = httpx.post(
        f"http://127.0.0.1:{port}/get_message_history",
        data={"user_one": a, "user_two": b},
        headers=auth(cluster, a),
        timeout=10,
    )
    assert direct.status_code == 503, direct.text
    assert direct.json()["error"] == "pair_unavailable"


def test_moving_one_pair_keeps_its_history_and_changes_its_owner(cluster: Cluster) -> None:
    owners = placed(cluster)
    # serving nodes: alive and owning pairs (a failed-over node is fenced and owns none)
    live = sorted({n for n in owners.values() if alive(cluster.pids[n])})
    (a, b), source = next(
        ((a, b), owners[pair_of(a, b)]) for a, b in PAIRS if owners[pair_of(a, b)] in live
    )
    target = next(n for n in live if n != source)
    pair = pair_of(a, b)
    before = history_texts(cluster, a, b)
    cluster.script("move.sh", pair.upper(), str(target))
    assert cluster.owner(pair) == f"node{target}"
    assert history_texts(cluster, a, b) == before
    with httpx.Client(timeout=10) as http:
        assert send_form(http, cluster, a, b, f"after the move {pair}") == 200
    assert cluster.files(pair) == [target], "the old owner's copy is set aside, not served"
    assert history_texts(cluster, b, a)[-1] == f"after the move {pair}"
