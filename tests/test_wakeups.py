"""Wake-ups across nodes through a real Redis (backend/wakeups/pubsub.py).

Two Notifiers stand for two nodes, each with its ``RedisWakeups`` on one throwaway
``redis-server``: a long-poll held on node B ends when node A notifies its key
(by the event, long before its 30-s timeout), nothing is echoed back, and a Redis
that dies and comes back leaves no wait asleep.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import redis

from backend.wakeups.notify import Notifier, Outcome, keys_for_message, user_key
from backend.wakeups.pubsub import BATCH_KEYS, WAKE_CHANNEL, RedisWakeups
from tests.redis_server import RedisServer
from tests.redis_server import redis_server as redis_server  # the fixture

pytestmark = pytest.mark.live  # a real database server

LONG = 30.0
"""Seconds a test waiter would sleep without a wake-up: returning early proves the event."""


@dataclass
class Node:
    notifier: Notifier
    wakeups: RedisWakeups


@pytest.fixture
def nodes(redis_server: RedisServer) -> Iterator[tuple[Node, Node]]:
    started = []
    for name in ("node-a", "node-b"):
        notifier = Notifier()
        wakeups = RedisWakeups(redis_server.url, notifier, name).start()
        assert wakeups.wait_ready(10), f"{name} did not subscribe"
        started.append(Node(notifier, wakeups))
    yield started[0], started[1]
    for node in started:
        node.wakeups.close()
        node.notifier.close()


class Waiter:
    """A thread blocked in ``Notifier.wait`` on one key, as a long-poll under Flask."""

    def __init__(self, notifier: Notifier, key: str, timeout: float = LONG) -> None:
        self.moved: bool | None = None
        self.took = 0.0
        seen = notifier.version(key)
        held_before = notifier.waiting()

        def run() -> None:
            started = time.monotonic()
            self.moved = notifier.wait(key, seen, timeout)
            self.took = time.monotonic() - started

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        until(lambda: notifier.waiting() > held_before, what="the waiter to block")

    def result(self, within: float) -> tuple[bool | None, float]:
        self.thread.join(within)
        assert not self.thread.is_alive(), f"still asleep after {within} s"
        return self.moved, self.took


def until(check: Callable[[], bool], within: float = 5.0, what: str = "the condition") -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.005)


def test_a_notification_on_one_node_wakes_a_wait_held_on_the_other(nodes: tuple[Node, Node]):
    a, b = nodes
    waiter = Waiter(b.notifier, user_key("bob"))
    a.notifier.notify(keys_for_message("alice", "bob"))
    moved, took = waiter.result(within=LONG / 2)
    assert moved is True  # woken by the change: a timeout would answer False, after LONG
    assert took < LONG / 2, f"woke after {took:.3f} s"  # (how fast: bench, table (i))


def test_a_parked_wait_on_the_event_loop_is_woken_too(nodes: tuple[Node, Node]):
    a, b = nodes
    key = user_key("bob")

    async def park() -> tuple[Outcome, float]:
        started = time.monotonic()
        waiting = asyncio.ensure_future(b.notifier.wait_async(key, b.notifier.version(key), LONG))
        while b.notifier.waiting() == 0:
            await asyncio.sleep(0.005)
        a.notifier.notify([key])
        return await asyncio.wait_for(waiting, LONG / 2), time.monotonic() - started

    outcome, took = asyncio.run(park())
    assert outcome is Outcome.CHANGED
    assert took < LONG / 2


def test_keys_are_not_echoed_back(nodes: tuple[Node, Node], redis_server: RedisServer):
    a, b = nodes
    heard: list[dict[str, Any]] = []
    listener = redis.Redis.from_url(redis_server.url).pubsub()
    listener.subscribe(WAKE_CHANNEL)
    confirmed = listener.get_message(timeout=5)
    assert confirmed is not None and confirmed["type"] == "subscribe"
    key = user_key("bob")
    a_before, b_before = a.notifier.version(key), b.notifier.version(key)

    a.notifier.notify([key])
    until(lambda: b.notifier.version(key) == b_before + 1, what="node B to hear it")
    until(lambda: a.wakeups.counters.ignored == 1, what="node A to hear its own message")
    # a marker, not a quiet half second: a change of B's own, published after anything B
    # could have queued in answer to A's message (one publisher per node, keys in order),
    # so what the channel carries up to the marker is all that B sent back
    marker = user_key("marker")
    b.notifier.notify([marker])
    while not heard or marker not in heard[-1].get("keys", []):
        message = listener.get_message(timeout=30)
        assert message is not None, f"the marker never came; heard {heard}"
        heard.append(json.loads(message["data"]))
    listener.close()

    # A's message, then B's marker alone: nothing sent back
    assert [(m["node"], m["keys"]) for m in heard] == [("node-a", [key]), ("node-b", [marker])]
    until(lambda: b.wakeups.counters.published == 1, 30, "B's count")
    until(lambda: a.wakeups.counters.received == 1, 30, "A to hear the marker")
    assert a.wakeups.counters.published == 1
    assert (a.notifier.version(key), b.notifier.version(key)) == (a_before + 1, b_before + 1)
    assert b.wakeups.counters.received == 1


def test_many_keys_go_in_few_messages_and_all_arrive(nodes: tuple[Node, Node]):
    a, b = nodes
    keys = [user_key(f"user{i}") for i in range(2 * BATCH_KEYS + 10)]
    a.notifier.notify(keys)
    until(lambda: all(b.notifier.version(k) == 1 for k in keys), what="every key on node B")
    # (A counts a message once its PUBLISH returns, which may be after B has it.)
    until(lambda: a.wakeups.counters.published_keys == len(keys), what="A's count")
    assert a.wakeups.counters.published == 3  # BATCH_KEYS keys a message


def test_publish_while_redis_is_down_does_not_raise(
    nodes: tuple[Node, Node], redis_server: RedisServer
):
    a, _ = nodes
    redis_server.kill()
    waiter = Waiter(a.notifier, user_key("alice"))
    started = time.monotonic()
    for i in range(100):
        a.notifier.notify(keys_for_message("alice", f"peer{i}"))
    # the request path never waits on Redis (a connect timeout each: minutes for 100)
    assert time.monotonic() - started < 5
    moved, _ = waiter.result(within=1)
    assert moved is True  # the local wake happened regardless
    until(lambda: a.wakeups.counters.dropped_keys > 0, what="the keys to be dropped")


def test_after_redis_comes_back_waits_are_woken_and_wake_ups_flow_again(
    nodes: tuple[Node, Node], redis_server: RedisServer
):
    a, b = nodes
    placement: list[str] = []
    resyncs: list[float] = []
    b.wakeups.subscribe("pairchat:placement", placement.append, lambda: resyncs.append(1))
    assert b.wakeups.wait_ready(5)
    key = user_key("bob")
    waiter = Waiter(b.notifier, key)

    redis_server.kill()
    a.notifier.notify([key])  # lost: Redis is down
    # gates, not a sleep: A has dropped the key (it can reach B no more) and B has seen its
    # subscription go; the waiter sleeps through both, so what wakes it below is the
    # re-subscription
    until(lambda: a.wakeups.counters.dropped_keys > 0, 30, "A to drop the key")
    until(lambda: not b.wakeups.wait_ready(0), 30, "B to lose its subscription")
    assert waiter.thread.is_alive(), "woken while Redis was down"
    redis_server.start()

    moved, took = waiter.result(within=10)
    assert moved is True and took < 10  # woken by the re-subscription, not its 30 s
    assert b.wakeups.counters.resyncs >= 1
    until(lambda: bool(resyncs), what="the placement channel's resync")
    assert b.wakeups.wait_ready(5)
    # And the link works again, both ways of using it.
    again = Waiter(b.notifier, key)
    a.notifier.notify([key])
    moved, took = again.result(within=LONG / 2)
    assert moved is True and took < LONG / 2
    assert a.wakeups.send("pairchat:placement", "pair:alice_bob.db")
    until(lambda: placement == ["pair:alice_bob.db"], what="the placement message")


def test_a_node_started_while_redis_is_down_subscribes_when_it_comes_up(
    redis_server: RedisServer,
):
    redis_server.kill()
    notifier = Notifier()
    wakeups = RedisWakeups(redis_server.url, notifier, "node-c").start()
    try:
        assert not wakeups.wait_ready(0.3)
        notifier.notify([user_key("carol")])  # does not raise
        redis_server.start()
        assert wakeups.wait_ready(10)
    finally:
        wakeups.close()
