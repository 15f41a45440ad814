"""Wake-ups for long-poll requests (``wait``), inside a process and across processes.

Waiters name a key (``user:<name>`` for a user's change feed, ``pair:<a>_<b>``
for a conversation) and the version of it they saw *before* querying; a
notification bumps the version, so a send that lands between the query and the
wait is never missed (no lost wake-up).

Writes from other worker processes are noticed by one watcher thread per
process that checks ``PRAGMA data_version`` of the accounts file (every send
writes the feed there) a few dozen times a second, reads which feed rows moved
and wakes exactly their keys.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable

from backend.storage.accounts import AccountStore
from backend.usernames import pair_file_name

log = logging.getLogger(__name__)


def user_key(username: str) -> str:
    return f"user:{username}"


def pair_key(a: str, b: str) -> str:
    low, high = (a, b) if a < b else (b, a)
    return f"pair:{pair_file_name(low, high)}"


def keys_for_message(author: str, recipient: str) -> list[str]:
    return [user_key(author), user_key(recipient), pair_key(author, recipient)]


class Notifier:
    """Versioned keys with one condition per key, all sharing one lock.

    ``max_waiters`` bounds the requests held at once, so held long-polls can
    never take every worker thread from sends and logins: past it, a ``wait``
    answers at once, as if ``wait=0``.
    """

    def __init__(self, max_waiters: int = 1000) -> None:
        self._lock = threading.Lock()
        self._versions: dict[str, int] = {}
        self._conditions: dict[str, tuple[threading.Condition, int]] = {}
        self._slots = threading.BoundedSemaphore(max_waiters)
        self._closed = False

    def version(self, key: str) -> int:
        with self._lock:
            return self._versions.get(key, 0)

    def notify(self, keys: Iterable[str]) -> None:
        with self._lock:
            for key in keys:
                self._versions[key] = self._versions.get(key, 0) + 1
                entry = self._conditions.get(key)
                if entry is not None:
                    entry[0].notify_all()

    def wait(self, key: str, seen: int, timeout: float) -> bool:
        """Block until ``key`` moves past ``seen`` or ``timeout``; True if it moved."""
        if timeout <= 0 or not self._slots.acquire(blocking=False):
            return self.version(key) != seen
        try:
            with self._lock:
                condition, count = self._conditions.get(key) or (threading.Condition(self._lock), 0)
                self._conditions[key] = (condition, count + 1)
                try:
                    return condition.wait_for(
                        lambda: self._closed or self._versions.get(key, 0) != seen, timeout
                    )
                finally:
                    condition, count = self._conditions[key]
                    if count == 1:
                        del self._conditions[key]
                    else:
                        self._conditions[key] = (condition, count - 1)
        finally:
            self._slots.release()

    @property
    def closed(self) -> bool:
        return self._closed

    def waiting(self) -> int:
        with self._lock:
            return sum(count for _, count in self._conditions.values())

    def close(self) -> None:
        """Release every waiter (server shutdown)."""
        with self._lock:
            self._closed = True
            for condition, _ in self._conditions.values():
                condition.notify_all()


class FeedWatcher:
    """Turns other processes' commits to the accounts file into notifications."""

    def __init__(self, store: AccountStore, notifier: Notifier, interval: float = 0.025) -> None:
        self._store = store
        self._notifier = notifier
        self._interval = interval
        self._stop = threading.Event()
        self._seen_seq = store.current_seq()
        self._seen_version = store.data_version()
        self._thread = threading.Thread(target=self._run, name="pairchat-feed-watcher", daemon=True)

    def start(self) -> FeedWatcher:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2)

    def poll_once(self) -> None:
        version = self._store.data_version()
        if version == self._seen_version:
            return
        self._seen_version = version
        seq, rows = self._store.changed_pairs(self._seen_seq)
        self._seen_seq = seq
        keys: set[str] = set()
        for owner, peer in rows:
            keys.add(user_key(owner))
            keys.add(pair_key(owner, peer))
        if keys:
            self._notifier.notify(keys)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.poll_once()
            except Exception:  # keep watching; a failed poll only delays wake-ups
                log.exception("feed watcher poll failed")
