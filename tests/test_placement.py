"""The placement map (multi-node mode) on a real PostgreSQL: one owner per pair, ever.

Two ``Placement`` objects on one database are two nodes. A pair is claimed by the
first node that writes it; the other refuses it (503 ``pair_unavailable``), reads
of an unplaced pair claim nothing, a fenced node serves nothing, ``assign`` moves a
fenced node's pairs and ``move`` one pair — and through the conversation store no
file of another node's pair is ever created.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from backend.core.errors import NodeFenced, PairElsewhere
from backend.http.errors import status_and_code
from backend.services.placement import Placement, pair_name
from backend.storage.conversations import ConversationStore
from backend.storage.placement import PlacementStore
from tests.pg_server import postgres_server, postgres_url

__all__ = ["postgres_server", "postgres_url"]
pytestmark = pytest.mark.live  # a real PostgreSQL server


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def node(url: str, name: str, clock: Clock | None = None) -> Placement:
    placement = Placement(PlacementStore(url), name, clock=clock or Clock())
    placement.start(f"http://{name}")
    return placement


def test_the_first_writer_owns_a_pair_and_the_other_node_refuses_it(postgres_url: str) -> None:
    one, two = node(postgres_url, "node1"), node(postgres_url, "node2")
    pair = pair_name("Bob", "alice")
    assert pair == "alice_bob"
    two.check(pair, create=False)  # a read of an unplaced pair places nothing
    assert one.store.owner(pair) is None
    one.check(pair, create=True)
    for create in (False, True):
        with pytest.raises(PairElsewhere) as refused:
            two.check(pair, create=create)
    assert status_and_code(refused.value) == (503, "pair_unavailable")
    assert one.store.owner(pair).node == "node1"  # type: ignore[union-attr]


def test_nodes_racing_for_new_pairs_agree_on_one_owner_each(postgres_url: str) -> None:
    nodes = [node(postgres_url, f"node{n}") for n in range(1, 4)]
    pairs = [f"u{n}_v{n}" for n in range(60)]
    won: dict[str, list[str]] = {pair: [] for pair in pairs}
    start = threading.Barrier(len(nodes))

    def race(placement: Placement) -> None:
        start.wait()
        for pair in pairs:
            try:
                placement.check(pair, create=True)
            except PairElsewhere:
                continue
            won[pair].append(placement.node)

    threads = [threading.Thread(target=race, args=(n,)) for n in nodes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(len(winners) == 1 for winners in won.values()), won
    assert {nodes[0].store.owner(p).node for p in pairs} == {  # type: ignore[union-attr]
        w[0] for w in won.values()
    }


def test_a_fenced_node_serves_nothing_until_unfenced(postgres_url: str) -> None:
    clock = Clock()
    one = node(postgres_url, "node1", clock)
    one.check("alice_bob", create=True)
    one.store.set_fenced("node1", True)
    one.check("alice_bob", create=False)  # within the cached answer's life: still its own
    clock.now += 10
    with pytest.raises(NodeFenced):
        one.check("alice_bob", create=False)
    restarted = node(postgres_url, "node1")  # a fenced node that comes back stays fenced
    with pytest.raises(NodeFenced):
        restarted.check("alice_bob", create=False)
    one.store.set_fenced("node1", False)
    one.forget()  # what a pairchat:placement message does
    one.check("alice_bob", create=False)


def test_assign_and_move_change_owners_and_forget_drops_cached_answers(postgres_url: str) -> None:
    one, two = node(postgres_url, "node1"), node(postgres_url, "node2")
    for pair in ("a_b", "c_d"):
        one.check(pair, create=True)
    one.store.set_fenced("node1", True)
    assert one.store.assign("node1", "node2") == 2
    two.check("a_b", create=False)
    two.store.set_moving("a_b", True)
    two.forget("a_b")
    with pytest.raises(PairElsewhere, match="moved"):
        two.check("a_b", create=True)
    two.store.move("a_b", "node3")
    with pytest.raises(PairElsewhere, match="another node"):
        two.check("a_b", create=True)
    two.check("c_d", create=True)


def test_the_store_never_creates_another_nodes_pair_file(postgres_url: str, tmp_path: Path) -> None:
    one, two = node(postgres_url, "node1"), node(postgres_url, "node2")
    first = ConversationStore(tmp_path / "one", guard=one.check)
    second = ConversationStore(tmp_path / "two", guard=two.check)
    conversation = first.get("alice", "bob", create=True)
    assert conversation is not None
    conversation.initialise_table()
    with pytest.raises(PairElsewhere):
        second.get("alice", "bob", create=True)
    with pytest.raises(PairElsewhere):
        second.exists("alice", "bob")
    assert not (tmp_path / "two" / "alice_bob.db").exists()
    assert (tmp_path / "one" / "alice_bob.db").exists()
    first.close()
    second.close()
