"""A bound on password hashing: few argon2 computations at once, and fair between addresses.

Each argon2id computation holds its memory cost (64 MiB by default) for its
whole run and, with argon2's default 4 lanes, keeps every core of a small
machine busy; a worker had no other limit on how many run together: 48
concurrent registrations once meant 3 GB of RSS and 6-8 s for every other
login. ``HashGate.slot(address)`` lets ``concurrency`` computations run and
queues a few more; the rest are refused at once with ``RateLimited`` (so a
waiting request never ties up a worker thread for long):

- at most ``per_address`` checks running or queued from one client address;
- at most ``queue`` waiting in all, each for at most ``timeout`` seconds;
- a freed slot goes to the waiting address served least recently, not to the
  oldest ticket: a flooding address gets its turn and then waits behind
  everyone else, so a real login from elsewhere is next in line.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from backend.core.errors import RateLimited

BUSY = "the server is busy checking passwords; retry in a moment"


@dataclass(order=True)
class _Ticket:
    served: int  # when this address last got a slot (0: never): lower goes first
    number: int  # arrival order among equals
    address: str = field(compare=False)


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
        self._waiting: list[_Ticket] = []
        self._by_address: dict[str, int] = {}
        self._served: dict[str, int] = {}  # address -> turn number it was last served at
        self._turns = itertools.count(1)
        self._arrivals = itertools.count()

    def _next(self) -> _Ticket | None:
        return min(self._waiting) if self._waiting else None

    @contextmanager
    def slot(self, address: str | None) -> Iterator[None]:
        """Run the body as one password computation, or raise ``RateLimited``."""
        key = address or "unknown"
        with self._cond:
            if self._by_address.get(key, 0) >= self.per_address:
                raise RateLimited(
                    "a password check from your address is already under way; retry in a moment"
                )
            if self._running >= self.concurrency and len(self._waiting) >= self.queue:
                raise RateLimited(BUSY)
            self._by_address[key] = self._by_address.get(key, 0) + 1
            ticket = _Ticket(self._served.get(key, 0), next(self._arrivals), key)
            self._waiting.append(ticket)
            ready = self._cond.wait_for(
                lambda: self._next() is ticket and self._running < self.concurrency,
                self.timeout,
            )
            self._waiting.remove(ticket)
            if ready:
                self._running += 1
                turn = next(self._turns)
                self._served[key] = turn
                for other in self._waiting:  # this address now waits behind the others
                    if other.address == key:
                        other.served = turn
                if len(self._served) > 4096:
                    self._served = {key: turn}
            else:
                self._release_address(key)
            self._cond.notify_all()
            if not ready:
                raise RateLimited(BUSY)
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
