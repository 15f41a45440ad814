"""Wake-ups for long-poll requests (``wait``), inside a process and across processes.

Waiters name a key (``user:<name>`` for a user's change feed, ``pair:<a>_<b>``
for a conversation) and the version of it they saw *before* querying; a
notification bumps the version, so a send that lands between the query and the
wait is never missed (no lost wake-up).

A request waits in one of two ways. Under the production server (the ASGI
front, ``backend/server/front.py``) it is *parked*: the long-poll leaves its ``Wait``
with the front (``backend/wakeups/long_poll.py``), which awaits ``wait_async`` on its
event loop, holding no thread; an event stream holds a ``Listener`` for its life. Under
Flask's test client or development server it blocks its thread in ``wait``.
Both kinds share one account of held requests (docs/design.md, "Delivery"):
at most ``max_waiters`` per process, and at most ``per_owner`` per owner (a
signed-in user, or an anonymous open-mode pair). An owner who asks for more
gets its *oldest* wait answered at once — never anyone else's — and past the
process-wide limit a ``wait`` answers at once, as if ``wait=0``.

Writes from other worker processes are noticed by one watcher thread per
process that checks ``PRAGMA data_version`` of the accounts file (every send
writes the feed there) a few dozen times a second, reads which feed rows moved
and wakes exactly their keys.

Other nodes (multi-node mode) hear of a notification through ``publish``, a
hook the composition root sets (``backend/wakeups/pubsub.py``: Redis pub/sub); what
arrives from them is notified with ``forward=False`` so it is never sent back.
When wake-ups may have been missed (the link to the other nodes was down),
``wake_all`` moves every key at once: every waiter runs its query again.

Wake-up latency (the ``woken`` hook, the metric ``pairchat_wakeup_latency_seconds``):
a change's commit time (Unix time) travels with its notification - ``notify``'s
``sent_at``, over Redis in the message, from the ``FeedWatcher``'s previous look for
another worker's commit - and is left on each waiter it wakes (one attribute store);
the waiter, running again on its own loop, reports the seconds since. One
observation per woken waiter, on the waiter's loop: it costs about what one
``time.time()`` and one histogram observe cost, beside the query the waiter then runs.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import math
import threading
import time
import weakref
from collections.abc import Callable, Iterable
from typing import Any

from backend.core.usernames import pair_file_name
from backend.storage.accounts import AccountStore

log = logging.getLogger(__name__)
TICK = 1.0
"""Seconds: long waits end together on ticks this far apart (``_Ticks``)."""
COALESCE_AFTER = 5.0
"""Waits at least this long end on a tick (up to ``TICK`` early); shorter ones exactly."""


def user_key(username: str) -> str:
    return f"user:{username}"


def pair_key(a: str, b: str) -> str:
    low, high = (a, b) if a < b else (b, a)
    return f"pair:{pair_file_name(low, high)}"


def keys_for_message(author: str, recipient: str) -> list[str]:
    return [user_key(author), user_key(recipient), pair_key(author, recipient)]


class Outcome(enum.Enum):
    """How a parked wait ended."""

    CHANGED = "changed"  # the key moved: run the request again
    TIMEOUT = "timeout"  # the wait ran out
    RELEASED = "released"  # answer now: the owner's newer wait, or shutdown
    FULL = "full"  # answer now and tell the client to back off: no slot is free
    GONE = "gone"  # the client hung up: nothing to answer


class _Hold:
    """One held request: counted against its owner and the process."""

    __slots__ = ("dropped", "owner", "released", "sent_at")

    def __init__(self, owner: str | None) -> None:
        self.owner = owner
        self.released = False
        self.dropped = False
        self.sent_at: float | None = None
        """When the change that woke it committed (Unix time), until its waiter resumes."""

    def wake(self) -> None:
        raise NotImplementedError


class _Blocked(_Hold):
    """A thread blocked in ``wait`` (the test client, the development server)."""

    __slots__ = ("condition",)

    def __init__(self, owner: str | None, condition: threading.Condition) -> None:
        super().__init__(owner)
        self.condition = condition

    def wake(self) -> None:
        self.condition.notify_all()  # called with the notifier's lock held


class _Parked(_Hold):
    """A request parked on an event loop: a future that ends with its ``Outcome``.

    Thousands are held at once, so each is small: this object, its future and
    a place in its tick (``_Ticks``), no timer or task of its own.
    """

    __slots__ = ("future", "loop")

    def __init__(self, owner: str | None, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(owner)
        self.loop = loop
        self.future: asyncio.Future[Outcome] = loop.create_future()

    def wake(self) -> None:
        """From any thread: the key moved, or the wait was released (``CHANGED`` is checked)."""
        self.loop.call_soon_threadsafe(_settle, self.future, Outcome.CHANGED)

    def hung_up(self, _: asyncio.Future[Any]) -> None:
        _settle(self.future, Outcome.GONE)


class Listener(_Hold):
    """An event stream's one slot, held for the stream's whole life (``Notifier.listen``).

    Unlike a parked wait it stays registered on its key between waits: a
    change that lands while the stream is busy sending is seen by the version
    check of its next ``wait``. Its size is this object and, while it waits,
    one future and a place in a tick: no thread, task or timer of its own.
    """

    __slots__ = ("_notifier", "future", "key", "loop", "recheck")

    def __init__(
        self, notifier: Notifier, key: str, owner: str | None, loop: asyncio.AbstractEventLoop
    ) -> None:
        super().__init__(owner)
        self._notifier = notifier
        self.key = key
        self.loop = loop
        self.future: asyncio.Future[Outcome] | None = None
        self.recheck = False
        """Set when accounts changed in another process: the stream checks its token again."""

    def wake(self) -> None:
        """From any thread: the key moved, the stream was released, or it must recheck."""
        self.loop.call_soon_threadsafe(self._poke)

    def _poke(self) -> None:
        if self.future is not None:
            _settle(self.future, Outcome.CHANGED)

    async def wait(
        self, seen: int, timeout: float, gone: asyncio.Future[Any] | None = None
    ) -> Outcome:
        """Until the key moves past ``seen`` (``CHANGED``), ``timeout`` passes (``TIMEOUT``,
        on a shared tick when long), the stream is released (``RELEASED``: the owner's
        newer stream or a stop) or ``gone`` resolves (``GONE``: the client hung up)."""
        if gone is not None and gone.done():
            return Outcome.GONE
        notifier = self._notifier
        with notifier._lock:
            if self.released or notifier._closed:
                return Outcome.RELEASED
            moved = self.recheck or notifier._version(self.key) != seen
            if not moved:
                future = self.future = self.loop.create_future()
        if moved:  # while the stream was busy sending: its wake-up waited for it
            notifier._resumed(self)
            return Outcome.CHANGED
        timer = None
        if timeout >= COALESCE_AFTER:
            notifier._ticks_of(self.loop).add(timeout, future)
        else:
            timer = self.loop.call_later(max(0.0, timeout), _settle, future, Outcome.TIMEOUT)
        if gone is not None:
            gone.add_done_callback(self._hung_up)
        try:
            outcome = await future
        finally:
            self.future = None
            if timer is not None:
                timer.cancel()
            if gone is not None:
                gone.remove_done_callback(self._hung_up)
        if outcome is Outcome.CHANGED:
            with notifier._lock:
                if self.released or notifier._closed:
                    return Outcome.RELEASED
            notifier._resumed(self)
        return outcome

    def _hung_up(self, _: asyncio.Future[Any]) -> None:
        if self.future is not None:
            _settle(self.future, Outcome.GONE)

    def close(self) -> None:
        """Give the slot back (the stream ended)."""
        self._notifier._unlisten(self)


def _settle(future: asyncio.Future[Outcome], outcome: Outcome) -> None:
    if not future.done():
        future.set_result(outcome)


class _Ticks:
    """The ends of long waits on one event loop, fired together once per ``TICK``.

    One timer per tick instead of one per wait: 10,000 clients waiting 50 s end
    200 waits a second, and waking the server once for all of them costs a
    quarter of waking it 200 times (docs/performance.md, "(g)"). A wait ends at
    the start of its tick, so up to ``TICK`` early, never late.
    """

    __slots__ = ("_due", "_loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._due: dict[int, list[asyncio.Future[Outcome]]] = {}

    def add(self, timeout: float, future: asyncio.Future[Outcome]) -> None:
        tick = math.floor((self._loop.time() + timeout) / TICK)
        due = self._due.get(tick)
        if due is None:
            due = self._due[tick] = []
            self._loop.call_at(tick * TICK, self._fire, tick)
        due.append(future)

    def _fire(self, tick: int) -> None:
        for future in self._due.pop(tick, ()):
            _settle(future, Outcome.TIMEOUT)


class Notifier:
    """Versioned keys, waiters per key, and the account of held requests, under one lock."""

    def __init__(self, max_waiters: int = 1000, per_owner: int = 4) -> None:
        self._lock = threading.Lock()
        self._versions: dict[str, int] = {}
        self._conditions: dict[str, tuple[threading.Condition, int]] = {}
        self._parked: dict[str, set[_Parked | Listener]] = {}
        self._owners: dict[str, list[_Hold]] = {}  # oldest first; a list: a few each
        self._ticks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Ticks] = (
            weakref.WeakKeyDictionary()
        )
        self._held = 0
        self._max_waiters = max_waiters
        self._per_owner = max(1, per_owner)
        self._closed = False
        self._epoch = 0  # added to every key's version: ``wake_all`` moves them all
        self.publish: Callable[[list[str], float], None] | None = None
        """Called by ``notify`` with the keys it woke and when their change committed (Unix
        time), to wake them on other nodes too."""
        self.woken: Callable[[float], None] | None = None
        """Called on the waiter's loop, once per held request or stream a change woke, with
        the seconds from the change's commit to the waiter running again (the wake-up
        latency metric; None: not measured)."""

    def _version(self, key: str) -> int:
        return self._versions.get(key, 0) + self._epoch  # called with the lock held

    def version(self, key: str) -> int:
        with self._lock:
            return self._version(key)

    def notify(
        self, keys: Iterable[str], forward: bool = True, sent_at: float | None = None
    ) -> None:
        """Move ``keys`` and wake their waiters; then ``publish`` them unless ``forward`` is
        False (keys that came from another node). ``sent_at``: when the change committed
        (Unix time; now if not given), carried to the waiters it wakes (``woken``)."""
        keys = list(keys)
        if sent_at is None:
            sent_at = time.time()
        woken: list[_Parked | Listener] = []
        with self._lock:
            for key in keys:
                self._versions[key] = self._versions.get(key, 0) + 1
                entry = self._conditions.get(key)
                if entry is not None:
                    entry[0].notify_all()
                parked = self._parked.get(key)
                if parked:
                    woken.extend(parked)
        for waiter in woken:
            if waiter.sent_at is None:  # woken twice before it ran: the first change counts
                waiter.sent_at = sent_at
            waiter.wake()
        publish = self.publish
        if forward and publish is not None and keys:
            publish(keys, sent_at)

    def _resumed(self, waiter: _Parked | Listener) -> None:
        """On the waiter's loop, a change woke it: how long since that change committed."""
        sent_at = waiter.sent_at
        if sent_at is None:  # a release, a recheck or a wake-all: no change of its own
            return
        waiter.sent_at = None
        woken = self.woken
        if woken is not None:
            woken(max(0.0, time.time() - sent_at))

    def wake_all(self) -> None:
        """Move every key, known or not, and wake every waiter: each runs its query again.

        For when notifications may have been lost (another node's were not heard):
        a needless re-query costs a little, a missed one leaves a wait asleep.
        """
        with self._lock:
            self._epoch += 1
            woken = self._wake_blocked_and_list_parked()
        for waiter in woken:
            waiter.wake()

    # -- the account of held requests (called with the lock held) ----------------
    def _hold(self, hold: _Hold) -> bool:
        """A slot for a new wait, or False past the process-wide limit.

        An owner at its limit has its oldest wait released (answered at once)
        to make room: a user can only ever crowd out their own waits.
        """
        owner = hold.owner
        if owner is not None:
            queue = self._owners.get(owner) or []
            while len(queue) >= self._per_owner:
                oldest = queue[0]
                oldest.released = True
                self._drop(oldest)  # may remove the owner's (now empty) queue
                oldest.wake()
        if self._held >= self._max_waiters:
            return False
        self._held += 1
        if owner is not None:
            self._owners.setdefault(owner, []).append(hold)
        return True

    def _drop(self, hold: _Hold) -> None:
        if hold.dropped:
            return
        hold.dropped = True
        self._held -= 1
        if hold.owner is not None:
            queue = self._owners.get(hold.owner)
            if queue is not None:
                queue.remove(hold)
                if not queue:
                    del self._owners[hold.owner]

    # -- waiting in a thread (test client, development server) -----------------------
    def wait(self, key: str, seen: int, timeout: float, owner: str | None = None) -> bool:
        """Block until ``key`` moves past ``seen`` or ``timeout``; True if it moved (or
        the notifier closed). False at once when no slot is free, and as soon as this wait
        is released for the same owner's newer one."""
        return self.wait_outcome(key, seen, timeout, owner) is Outcome.CHANGED

    def wait_outcome(
        self, key: str, seen: int, timeout: float, owner: str | None = None
    ) -> Outcome:
        """``wait``, saying how it ended: ``CHANGED`` (moved, or closed: check ``closed``),
        ``TIMEOUT``, ``RELEASED`` (the owner's newer wait) or ``FULL`` (no slot)."""
        if timeout <= 0:
            return Outcome.CHANGED if self.version(key) != seen else Outcome.TIMEOUT
        with self._lock:
            if self._closed or self._version(key) != seen:
                return Outcome.CHANGED
            condition, count = self._conditions.get(key) or (threading.Condition(self._lock), 0)
            hold = _Blocked(owner, condition)
            if not self._hold(hold):
                return Outcome.FULL
            self._conditions[key] = (condition, count + 1)
            try:
                moved = condition.wait_for(
                    lambda: self._closed or hold.released or self._version(key) != seen,
                    timeout,
                )
                if hold.released:
                    return Outcome.RELEASED
                return Outcome.CHANGED if moved else Outcome.TIMEOUT
            finally:
                self._drop(hold)
                condition, count = self._conditions[key]
                if count == 1:
                    del self._conditions[key]
                else:
                    self._conditions[key] = (condition, count - 1)

    # -- waiting on the event loop (the production front) -----------------------------
    async def wait_async(
        self,
        key: str,
        seen: int,
        timeout: float,
        owner: str | None = None,
        gone: asyncio.Future[Any] | None = None,
    ) -> Outcome:
        """Park until ``key`` moves past ``seen``; no thread is held meanwhile.

        ``gone`` resolves when the client hangs up (the ASGI ``http.disconnect``).
        A wait of ``COALESCE_AFTER`` seconds or more ends on its tick (``_Ticks``),
        up to ``TICK`` early; a shorter one has a timer of its own.
        """
        loop = asyncio.get_running_loop()
        parked = _Parked(owner, loop)
        future = parked.future
        with self._lock:
            if self._closed:
                return Outcome.RELEASED
            if self._version(key) != seen:
                return Outcome.CHANGED
            if timeout <= 0:
                return Outcome.TIMEOUT
            if not self._hold(parked):
                return Outcome.FULL
            self._parked.setdefault(key, set()).add(parked)
            ticks = self._ticks_of(loop) if timeout >= COALESCE_AFTER else None
        timer = None
        if ticks is not None:
            ticks.add(timeout, future)
        else:
            timer = loop.call_later(timeout, _settle, future, Outcome.TIMEOUT)
        hung_up = parked.hung_up  # one bound method: removed by identity below
        if gone is not None:
            gone.add_done_callback(hung_up)
        try:
            outcome = await future
            if outcome is Outcome.CHANGED:
                with self._lock:
                    if parked.released or self._closed:
                        return Outcome.RELEASED
                self._resumed(parked)
            return outcome
        finally:
            if timer is not None:
                timer.cancel()
            if gone is not None:
                gone.remove_done_callback(hung_up)
            with self._lock:
                self._drop(parked)
                waiting = self._parked.get(key)
                if waiting is not None:
                    waiting.discard(parked)
                    if not waiting:
                        del self._parked[key]

    def _ticks_of(self, loop: asyncio.AbstractEventLoop) -> _Ticks:
        ticks = self._ticks.get(loop)
        if ticks is None:
            ticks = self._ticks[loop] = _Ticks(loop)
        return ticks

    # -- event streams: a slot held for a stream's life ---------------------------------
    def listen(self, key: str, owner: str | None = None) -> Listener | None:
        """A slot for an event stream on ``key`` (on the running loop), or None when every
        slot is taken. Like a wait, it counts against its owner: past the per-owner
        limit the owner's *oldest* wait or stream is released."""
        listener = Listener(self, key, owner, asyncio.get_running_loop())
        with self._lock:
            if self._closed or not self._hold(listener):
                return None
            self._parked.setdefault(key, set()).add(listener)
        return listener

    def _unlisten(self, listener: Listener) -> None:
        with self._lock:
            self._drop(listener)
            waiting = self._parked.get(listener.key)
            if waiting is not None:
                waiting.discard(listener)
                if not waiting:
                    del self._parked[listener.key]

    def recheck_streams(self) -> None:
        """Every stream checks its token again (accounts changed in another process:
        a token may have been revoked there, which moved no key here)."""
        with self._lock:
            listeners = [
                waiter
                for parked in self._parked.values()
                for waiter in parked
                if isinstance(waiter, Listener)
            ]
            for listener in listeners:
                listener.recheck = True
        for listener in listeners:
            listener.wake()

    def full(self) -> bool:
        """Whether every slot for a held request or stream is taken."""
        with self._lock:
            return self._held >= self._max_waiters

    # -- state ---------------------------------------------------------------------
    @property
    def closed(self) -> bool:
        return self._closed

    def waiting(self) -> int:
        """Requests held right now (threads and parked)."""
        with self._lock:
            return self._held

    def close(self) -> None:
        """Release every waiter, now and from now on (server shutdown)."""
        with self._lock:
            self._closed = True
            woken = self._wake_blocked_and_list_parked()
        for waiter in woken:
            waiter.wake()

    def _wake_blocked_and_list_parked(self) -> list[_Parked | Listener]:
        """With the lock held: wake every blocked thread; the parked waits, to wake after."""
        for condition, _ in self._conditions.values():
            condition.notify_all()
        return [waiter for parked in self._parked.values() for waiter in parked]


class FeedWatcher:
    """Turns other processes' commits to the accounts file into notifications."""

    def __init__(
        self,
        store: AccountStore,
        notifier: Notifier,
        interval: float = 0.025,
        on_accounts_changed: Callable[[], None] | None = None,
        *,
        wake_feed: bool = True,
    ) -> None:
        self._wake_feed = wake_feed
        """False in multi-node mode: every process's sends arrive through Redis already,
        and waking their keys again would re-run each woken request's query for nothing."""
        self._store = store
        self._notifier = notifier
        self._interval = interval
        self._on_accounts_changed = on_accounts_changed
        self._stop = threading.Event()
        self._seen_seq = store.current_seq()
        self._looked = time.time()  # the last look that found nothing new: commits came after
        self._seen_version = store.data_version() or 0
        self._seen_epoch = store.account_epoch()
        self._thread = threading.Thread(target=self._run, name="pairchat-feed-watcher", daemon=True)

    def start(self) -> FeedWatcher:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2)

    def poll_once(self) -> None:
        if not self._wake_feed:
            self._check_accounts()
            return
        looked, self._looked = self._looked, time.time()
        version = self._store.data_version(wait=False)
        if version is None:
            self._looked = looked  # busy serving a request: look again next tick
            return
        if version == self._seen_version:
            return
        self._seen_version = version
        self._check_accounts()
        seq, rows = self._store.changed_pairs(self._seen_seq)
        self._seen_seq = seq
        keys: set[str] = set()
        for owner, peer in rows:
            keys.add(user_key(owner))
            keys.add(pair_key(owner, peer))
        if keys:  # the writing process told other nodes itself
            # Committed after the previous look: the latency measured from it is at most
            # one ``interval`` more than the true one, never less.
            self._notifier.notify(keys, forward=False, sent_at=looked)

    def _check_accounts(self) -> None:
        epoch = self._store.account_epoch()
        if epoch != self._seen_epoch:
            self._seen_epoch = epoch
            if self._on_accounts_changed is not None:
                self._on_accounts_changed()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.poll_once()
            except Exception:  # keep watching; a failed poll only delays wake-ups
                log.exception("feed watcher poll failed")
