"""Issue 23: wake-up latency - a change's commit time travels with its wake-up.

``Notifier.notify`` leaves the change's commit time on each waiter it wakes; the
waiter, running again on its loop, reports the seconds since through the
``woken`` hook (``pairchat_wakeup_latency_seconds`` under the real server,
tests/test_metrics.py). Here: a parked long-poll and an event stream's listener in
one process, a waiter in another worker (the feed watcher), and one on another node
(the time rides the Redis message).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from backend.core.settings import Settings
from backend.core.usernames import Username
from backend.services.wiring import build_services
from backend.wakeups.notify import FeedWatcher, Notifier, Outcome, keys_for_message, user_key
from backend.wakeups.pubsub import RedisWakeups
from tests.redis_server import RedisServer
from tests.redis_server import redis_server as redis_server  # the fixture

AGO = 0.5  # seconds before the wake-up its change "committed"


async def _until(check: object, within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.002)


def test_a_parked_wait_reports_the_time_since_the_change_committed() -> None:
    notifier = Notifier()
    seen: list[float] = []
    notifier.woken = seen.append
    key = user_key("bob")

    async def run() -> Outcome:
        waiting = asyncio.ensure_future(notifier.wait_async(key, notifier.version(key), 30))
        await _until(lambda: notifier.waiting() == 1)
        notifier.notify([key], sent_at=time.time() - AGO)
        return await asyncio.wait_for(waiting, 5)

    assert asyncio.run(run()) is Outcome.CHANGED
    assert len(seen) == 1 and AGO <= seen[0] < AGO + 1, seen


def test_a_stream_reports_each_change_once_and_nothing_for_a_release() -> None:
    notifier = Notifier()
    seen: list[float] = []
    notifier.woken = seen.append
    key = user_key("bob")

    async def run() -> list[Outcome]:
        listener = notifier.listen(key)
        assert listener is not None
        outcomes = []
        version = notifier.version(key)
        waiting = asyncio.ensure_future(listener.wait(version, 30))
        await _until(lambda: listener.future is not None)
        notifier.notify([key])  # now: a few ms at most
        outcomes.append(await asyncio.wait_for(waiting, 5))
        # a change while the stream is busy sending: seen by its next wait's version check
        notifier.notify([key], sent_at=time.time() - AGO)
        outcomes.append(await listener.wait(version + 1, 30))
        notifier.wake_all()  # a resync is no change of its own: not measured
        outcomes.append(await listener.wait(notifier.version(key) - 1, 30))
        listener.close()
        return outcomes

    assert asyncio.run(run()) == [Outcome.CHANGED] * 3
    assert len(seen) == 2, seen
    assert seen[0] < 0.25 and AGO <= seen[1] < AGO + 1, seen


def test_another_workers_send_is_measured_from_the_watchers_previous_look(
    tmp_path: Path,
) -> None:
    """The feed watcher cannot know when another process committed: from its previous
    look (which found nothing) - never less than the true latency."""
    settings = Settings(data_dir=tmp_path, watch_interval=0)
    writer, reader = build_services(settings), build_services(settings)
    try:
        seen: list[float] = []
        reader.notifier.woken = seen.append
        watcher = FeedWatcher(reader.account_store, reader.notifier)
        for name in ("alice", "bob"):
            writer.accounts.register(Username(name), "correct horse battery")
        watcher.poll_once()
        key = user_key("bob")

        async def run() -> Outcome:
            version = reader.notifier.version(key)
            waiting = asyncio.ensure_future(reader.notifier.wait_async(key, version, 30))
            await _until(lambda: reader.notifier.waiting() == 1)
            looked = time.time()
            watcher.poll_once()  # nothing new: the look the send comes after
            await asyncio.sleep(0.2)
            writer.chat.send(Username("alice"), Username("bob"), "hello")
            watcher.poll_once()
            outcome = await asyncio.wait_for(waiting, 5)
            assert seen and seen[0] >= 0.2 and seen[0] <= time.time() - looked, seen
            return outcome

        assert asyncio.run(run()) is Outcome.CHANGED
    finally:
        writer.close()
        reader.close()


@pytest.mark.live  # a real redis-server
def test_the_commit_time_rides_the_redis_message(redis_server: RedisServer) -> None:
    a, b = Notifier(), Notifier()
    links = [RedisWakeups(redis_server.url, n, name).start() for n, name in ((a, "a"), (b, "b"))]
    try:
        assert all(link.wait_ready(10) for link in links)
        seen: list[float] = []
        b.woken = seen.append
        key = user_key("bob")

        async def run() -> Outcome:
            waiting = asyncio.ensure_future(b.wait_async(key, b.version(key), 30))
            await _until(lambda: b.waiting() == 1)
            a.notify(keys_for_message("alice", "bob"), sent_at=time.time() - AGO)
            return await asyncio.wait_for(waiting, 5)

        assert asyncio.run(run()) is Outcome.CHANGED
        assert len(seen) == 1 and AGO <= seen[0] < AGO + 1, seen
    finally:
        for link in links:
            link.close()
