"""Wake-ups across nodes (multi-node mode): the Notifier's keys over Redis pub/sub.

A send on one node moves its keys in that process's ``Notifier`` (``backend/wakeups/notify.py``);
long-polls waiting on the same keys may be held by any other node. ``RedisWakeups``
connects the two: set as the Notifier's ``publish`` hook, it sends each batch of keys
as one JSON message ``{"node": …, "from": …, "at": …, "keys": […]}`` on ``pairchat:wake``
(``at``: when the oldest of its keys' changes committed, Unix time, so the node that
wakes a waiter measures the wake-up latency from the commit, not from its arrival);
a subscriber thread in every process notifies the keys it hears locally
(``forward=False``: never sent on again, so no loops) and skips its own messages.

Delivery is best effort, and built so that a lost message costs a re-query, never a
wait asleep until its timeout:

- ``publish`` only hands the keys to a publisher thread (microseconds, never raises,
  never blocks a request on Redis). That thread sends what has piled up as one
  message: under load many keys per message. If Redis is down it logs and drops
  them (the local wake already happened); once a publish goes through again it
  first sends ``{"all": true}`` so every other process wakes all its waiters.
- The subscriber reconnects with backoff when Redis goes away, and after every
  re-subscription calls ``Notifier.wake_all`` (and each channel's ``resync``): what
  was published meanwhile is lost, so every waiter runs its query again.

What went wrong and what came back is told to ``on_trouble(event, what)`` when set (the
metrics: ``pairchat_redis_errors_total{what}``, ``pairchat_redis_reconnects_total{what}``):
``("error", "publish" | "subscribe" | "send")`` for each failure caught, ``("reconnect",
"publish" | "subscribe")`` when publishing works again after a failure, or the
subscription is back after it was lost.

The origin of a message is this process (node name, pid, a random tag), not the
node: other worker processes of the same node hear it too.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from backend.wakeups.notify import Notifier

log = logging.getLogger(__name__)

WAKE_CHANNEL = "pairchat:wake"
BATCH_KEYS = 500
"""Most keys in one message; more pending are sent in several."""
MAX_PENDING = 100_000
"""Keys waiting for the publisher past which they are dropped (Redis too slow)."""
BACKOFF_FIRST = 0.05
BACKOFF_MAX = 2.0
"""Seconds between reconnection attempts: doubled from the first up to the most."""


@dataclass
class Counters:
    """What a ``RedisWakeups`` did, for tests and operators."""

    published: int = 0  # messages sent
    published_keys: int = 0
    dropped_keys: int = 0  # handed to publish but never sent (Redis down or too slow)
    received: int = 0  # messages from other processes acted on
    ignored: int = 0  # this process's own messages heard back
    subscriptions: int = 0  # times the subscriber (re)subscribed
    resyncs: int = 0  # wake-alls after a re-subscription or an "all" message


@dataclass
class _Channel:
    callback: Callable[[str], None]
    resync: Callable[[], None] | None
    confirmed: bool = False  # subscribed at least once: a later confirmation is a reconnection


class RedisWakeups:
    """Publishes this process's notifications and notifies those of other processes."""

    def __init__(
        self,
        redis_url: str,
        notifier: Notifier,
        node: str,
        *,
        channel: str = WAKE_CHANNEL,
        socket_timeout: float = 5.0,
    ) -> None:
        self.node = node
        self.origin = f"{node}/{os.getpid()}/{secrets.token_hex(4)}"
        self.channel = channel
        self.counters = Counters()
        self._notifier = notifier
        options = {"socket_connect_timeout": 2.0, "socket_timeout": socket_timeout}
        # One immediate retry: a pooled connection to a restarted Redis fails once.
        self._client = redis.Redis.from_url(redis_url, retry=Retry(NoBackoff(), 1), **options)
        # The subscriber reconnects in its own loop (``_listen``), with backoff.
        self._sub_client = redis.Redis.from_url(
            redis_url, retry=Retry(NoBackoff(), 0), health_check_interval=15, **options
        )
        self._channels: dict[str, _Channel] = {
            channel: _Channel(self._on_wake, notifier.wake_all),
        }
        self._lock = threading.Lock()
        self._pending: dict[str, float] = {}  # keys to publish, in order -> first change
        self._lost = False  # keys were dropped: tell the others to wake everyone
        self._has_work = threading.Event()
        self._stop = threading.Event()
        self._subscribed = threading.Event()
        self._publisher = threading.Thread(
            target=self._publish_loop, name="pairchat-wake-publisher", daemon=True
        )
        self._subscriber = threading.Thread(
            target=self._subscribe_loop, name="pairchat-wake-subscriber", daemon=True
        )
        self.on_trouble: Callable[[str, str], None] | None = None
        """Told ("error" | "reconnect", what) as Redis fails and comes back (metrics)."""

    def _trouble(self, event: str, what: str) -> None:
        on_trouble = self.on_trouble
        if on_trouble is not None:
            _call(on_trouble, event, what)

    # -- the API -------------------------------------------------------------------
    def start(self) -> RedisWakeups:
        """Start both threads and become the Notifier's ``publish`` hook; returns at once."""
        self._notifier.publish = self.publish
        self._publisher.start()
        self._subscriber.start()
        return self

    def wait_ready(self, timeout: float) -> bool:
        """Whether the subscriber is subscribed to every channel within ``timeout`` s."""
        return self._subscribed.wait(timeout)

    def publish(self, keys: Iterable[str], sent_at: float | None = None) -> None:
        """Queue ``keys`` (changed at ``sent_at``, Unix time) for the other processes; never
        raises, never waits on Redis."""
        at = time.time() if sent_at is None else sent_at
        with self._lock:
            pending = self._pending
            for key in keys:
                pending.setdefault(key, at)
            if len(self._pending) > MAX_PENDING:
                self.counters.dropped_keys += len(self._pending)
                self._pending.clear()
                self._lost = True
        self._has_work.set()

    def subscribe(
        self,
        channel: str,
        callback: Callable[[str], None],
        resync: Callable[[], None] | None = None,
    ) -> None:
        """Call ``callback(data)`` in the subscriber thread for each message on ``channel``.

        ``resync()`` is called after each re-subscription (messages may have been
        missed while Redis was away): drop what the messages would have invalidated.
        Messages published by this process are delivered too.
        """
        with self._lock:
            self._channels[channel] = _Channel(callback, resync)
            self._subscribed.clear()

    def send(self, channel: str, data: str) -> bool:
        """Publish ``data`` on ``channel`` now (not batched); False if Redis is unreachable."""
        try:
            self._client.publish(channel, data)
        except (redis.RedisError, OSError) as exc:
            log.warning("could not publish on %s: %s", channel, exc)
            self._trouble("error", "send")
            return False
        return True

    def close(self) -> None:
        """Stop both threads (pending keys are dropped) and close the connections."""
        if self._notifier.publish == self.publish:
            self._notifier.publish = None
        self._stop.set()
        self._has_work.set()
        for thread in (self._publisher, self._subscriber):
            if thread.is_alive():
                thread.join(timeout=5)
        self._client.close()
        self._sub_client.close()

    # -- publishing ----------------------------------------------------------------------
    def _publish_loop(self) -> None:
        delay = 0.0  # seconds before the next attempt; 0 while Redis answers
        while not self._stop.is_set():
            self._has_work.wait()
            with self._lock:
                self._has_work.clear()
                pending, self._pending = self._pending, {}
                keys = list(pending)
                lost = self._lost
            if self._stop.is_set():
                return
            try:
                if lost:  # keys were dropped: every other process re-queries all its waits
                    self._client.publish(self.channel, self._message(wake_all=True))
                    self.counters.published += 1
                    with self._lock:
                        self._lost = False
                while keys:
                    batch = keys[:BATCH_KEYS]
                    at = min(pending[key] for key in batch)
                    self._client.publish(self.channel, self._message(batch, at=at))
                    self.counters.published += 1
                    self.counters.published_keys += len(batch)
                    del keys[:BATCH_KEYS]
            except (redis.RedisError, OSError) as exc:
                with self._lock:
                    self._lost = True
                self.counters.dropped_keys += len(keys)
                self._trouble("error", "publish")
                if not delay:
                    log.warning("Redis unreachable: wake-ups for other nodes dropped (%s)", exc)
                delay = min(BACKOFF_MAX, max(BACKOFF_FIRST, delay * 2))
                self._stop.wait(delay)
                self._has_work.set()  # try again, to send the "all" message
            else:
                if delay:
                    log.warning("Redis reachable again: wake-ups for other nodes resume")
                    self._trouble("reconnect", "publish")
                delay = 0.0

    def _message(
        self, keys: list[str] | None = None, wake_all: bool = False, at: float | None = None
    ) -> str:
        body: dict[str, object] = {"node": self.node, "from": self.origin}
        if wake_all:
            body["all"] = True
        else:
            body["keys"] = keys or []
            if at is not None:
                body["at"] = at
        return json.dumps(body)

    # -- subscribing ---------------------------------------------------------------------
    def _subscribe_loop(self) -> None:
        delay = BACKOFF_FIRST
        while not self._stop.is_set():
            pubsub = self._sub_client.pubsub()
            try:
                self._listen(pubsub)
                return  # stopped
            except (redis.RedisError, OSError) as exc:
                if self._subscribed.is_set():  # it was up: log once, retry soon
                    log.warning("Redis subscription lost, reconnecting: %s", exc)
                    delay = BACKOFF_FIRST
                self._subscribed.clear()
                self._trouble("error", "subscribe")
            finally:
                with contextlib.suppress(redis.RedisError, OSError):
                    pubsub.close()
            self._stop.wait(delay * random.uniform(0.5, 1.0))
            delay = min(BACKOFF_MAX, delay * 2)

    def _listen(self, pubsub: redis.client.PubSub) -> None:
        """Subscribe, then hand each message on until stopped; raises when Redis goes away."""
        asked: set[str] = set()
        confirmed: set[str] = set()  # on this connection
        while not self._stop.is_set():
            with self._lock:
                missing = [name for name in self._channels if name not in asked]
            if missing:
                pubsub.subscribe(*missing)
                asked.update(missing)
            message = pubsub.get_message(timeout=0.5)
            if message is None:
                continue
            kind = message["type"]
            name = _text(message["channel"])
            if kind == "subscribe":
                confirmed.add(name)
                self._confirmed(name, confirmed)
            elif kind == "message":
                with self._lock:
                    channel = self._channels.get(name)
                if channel is not None:
                    _call(channel.callback, _text(message["data"]))

    def _confirmed(self, name: str, confirmed: set[str]) -> None:
        """A subscription took: after a reconnection, catch up on what was missed."""
        self.counters.subscriptions += 1
        with self._lock:
            channel = self._channels.get(name)
            again = channel is not None and channel.confirmed
            if channel is not None:
                channel.confirmed = True
            everything = set(self._channels) <= confirmed
        if again and name == self.channel:  # the wake-up channel is back after a loss
            self._trouble("reconnect", "subscribe")
        if again and channel is not None and channel.resync is not None:
            if name == self.channel:
                self.counters.resyncs += 1
            _call(channel.resync)
        if everything:
            self._subscribed.set()

    def _on_wake(self, data: str) -> None:
        try:
            message = json.loads(data)
            origin = message.get("from")
            keys = message.get("keys") or []
            if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
                raise ValueError("keys must be a list of strings")
            at = message.get("at")
            if not isinstance(at, int | float) or isinstance(at, bool):
                at = None  # an older node's message: measured from its arrival
        except (ValueError, AttributeError) as exc:
            log.warning("ignored a malformed wake-up message: %s", exc)
            return
        if origin == self.origin:
            self.counters.ignored += 1
            return
        self.counters.received += 1
        if message.get("all"):
            self.counters.resyncs += 1
            self._notifier.wake_all()
        elif keys:
            self._notifier.notify(keys, forward=False, sent_at=at)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _call(callback: Callable[..., None], *args: str) -> None:
    try:
        callback(*args)
    except Exception:  # one bad callback must not end the subscriber
        log.exception("wake-up subscriber callback failed")
