"""A bound on password hashing: few argon2 computations at once, and fair between addresses.

Each argon2id computation holds its memory cost (64 MiB by default) for its
whole run, and a worker has no other limit on how many run together: 48
concurrent registrations once meant 3 GB of RSS and seconds of delay for every
other login. ``HashGate.slot(address)`` lets ``concurrency`` computations run,
queues a few more in arrival order, and refuses the rest at once with
``RateLimited`` (so a waiting request never ties up a worker thread for long):

- at most ``per_address`` checks running or queued from one client address, so
  one flooding address cannot crowd out a login from anywhere else;
- at most ``queue`` waiting in all, each for at most ``timeout`` seconds.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager

from backend.errors import RateLimited


class HashGate:
    def __init__(
        self, concurrency: int, *, queue: int = 16, per_address: int = 2, timeout: float = 5.0
    ) -> None:
        self.concurrency = max(1, concurrency)
        self.queue = max(0, queue)
        self.per_address = max(1, per_address)
        self.timeout = timeout
        self._cond = threading.Condition()
        self._running = 0
        self._waiting: deque[object] = deque()
        self._by_address: dict[str, int] = {}

    @contextmanager
    def slot(self, address: str | None) -> Iterator[None]:
        """Run the body as one password computation, or raise ``RateLimited``."""
        key = address or "unknown"
        with self._cond:
            if self._by_address.get(key, 0) >= self.per_address:
                raise RateLimited(
                    "a password check from your address is already under way; retry in a moment"
                )
            full = self._running >= self.concurrency
            if full and len(self._waiting) >= self.queue:
                raise RateLimited("the server is busy checking passwords; retry in a moment")
            self._by_address[key] = self._by_address.get(key, 0) + 1
            ticket = object()
            self._waiting.append(ticket)
            ready = self._cond.wait_for(
                lambda: self._waiting[0] is ticket and self._running < self.concurrency,
                self.timeout,
            )
            self._waiting.remove(ticket)
            if ready:
                self._running += 1
            else:
                self._release_address(key)
            self._cond.notify_all()
            if not ready:
                raise RateLimited("the server is busy checking passwords; retry in a moment")
        try:
            yield
        finally:
            with self._cond:
                self._running -= 1
                self._release_address(key)
                self._cond.notify_all()

    def _release_address(self, key: str) -> None:
        count = self._by_address[key] - 1
        if count:
            self._by_address[key] = count
        else:
            del self._by_address[key]
