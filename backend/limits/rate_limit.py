"""A sliding-window rate limit whose check and count are one atomic step.

``Limiter("10 per minute")`` keeps, per key, the times of the hits still inside
the window. ``take(key)`` either records a hit or refuses, under one lock, so
60 requests racing for a limit of 10 get exactly 10 (a test-then-hit pair of
calls would let them all through). ``give_back(key)`` undoes one hit (a login
that turned out right). In memory, per worker process; rates are written as
``limits`` parses them (``"10 per minute"``, ``"5/hour"``).

Each take or give-back also reports where that key now stands (``Quota``:
limit, remaining, seconds until the window frees a slot) to whoever watches the
current context (``watch_quotas``/``quotas_seen``): the HTTP layer does for each
request, and writes the tightest as ``X-RateLimit-*`` headers
(``backend.http.rate_headers``). Nobody watching: nothing is kept.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from dataclasses import dataclass

from limits import parse

Clock = Callable[[], float]


@dataclass(frozen=True)
class Quota:
    """Where one limiter's key stands: its ``limit`` per window, the hits it has
    ``remaining`` and the seconds until the window frees a slot (``reset``; 0 when
    none is used)."""

    limit: int
    remaining: int
    reset: float


# (limiter, key) -> its Quota after the latest take or give-back in this context;
# None: nobody watches (outside a request).
_SEEN: ContextVar[dict[tuple[int, str], Quota] | None] = ContextVar("quotas_seen", default=None)


def watch_quotas() -> None:
    """From now on in this context, keep each limiter's report (``quotas_seen``)."""
    _SEEN.set({})


def stop_watching() -> None:
    _SEEN.set(None)


def quotas_seen() -> list[Quota]:
    """Every limit consulted since ``watch_quotas``, as it stands now (one per limiter and key)."""
    seen = _SEEN.get()
    return list(seen.values()) if seen else []


def tightest(quotas: Iterable[Quota]) -> Quota | None:
    """The quota closest to refusing: fewest remaining, then the longest until a slot frees."""
    return min(quotas, key=lambda quota: (quota.remaining, -quota.reset), default=None)


def in_words(seconds: float) -> str:
    """A wait for people, rounded up: "12 seconds", "2 minutes", "52 minutes", "3 hours"."""
    whole = max(1, int(-(-seconds // 1)))
    if whole <= 90:
        count, unit = whole, "second"
    elif whole <= 2 * 3600:
        count, unit = -(-whole // 60), "minute"
    else:
        count, unit = -(-whole // 3600), "hour"
    return f"{count} {unit}{'' if count == 1 else 's'}"


def parse_rate(rate: str) -> tuple[int, float]:
    """(amount, window seconds) of a rate like ``"10 per minute"``; ValueError if it is none."""
    item = parse(rate)
    return int(item.amount), float(item.get_expiry())


class Limiter:
    def __init__(self, rate: str, *, clock: Clock = time.monotonic) -> None:
        self.rate = rate
        self.amount, self.window = parse_rate(rate)
        self._clock = clock
        self._lock = threading.Lock()
        self._hits: dict[str, deque[float]] = {}
        self._calls = 0

    def _live(self, key: str, now: float) -> deque[float]:
        hits = self._hits.get(key)
        if hits is None:
            hits = self._hits[key] = deque()
        horizon = now - self.window
        while hits and hits[0] <= horizon:
            hits.popleft()
        return hits

    def take(self, key: str) -> bool:
        """Count one hit for ``key``, or False (and count nothing) when it has none left."""
        return self.take_all([key])

    def take_all(self, keys: Iterable[str]) -> bool:
        """One hit on each key, all or none: False when any of them has none left."""
        now = self._clock()
        keys = list(keys)
        with self._lock:
            self._sweep(now)
            queues = [self._live(key, now) for key in keys]
            taken = all(len(hits) < self.amount for hits in queues)
            if taken:
                for hits in queues:
                    hits.append(now)
            for key, hits in zip(keys, queues, strict=True):
                self._report(key, hits, now)
            return taken

    def give_back(self, key: str) -> None:
        """Undo the newest hit of ``key`` (it should not have counted)."""
        now = self._clock()
        with self._lock:
            hits = self._hits.get(key)
            if hits:
                hits.pop()
            self._report(key, self._live(key, now), now)

    def _report(self, key: str, hits: deque[float], now: float) -> None:
        """Tell whoever watches this context where ``key`` stands now."""
        seen = _SEEN.get()
        if seen is None:
            return
        # With the key full, the slot that frees first is the oldest of the last
        # ``amount`` hits: the same time ``wait`` says.
        oldest = hits[max(0, len(hits) - self.amount)] if hits else None
        reset = 0.0 if oldest is None else max(0.0, self.window - (now - oldest))
        seen[(id(self), key)] = Quota(self.amount, max(0, self.amount - len(hits)), reset)

    def wait(self, key: str) -> float:
        """Seconds until ``key`` may take a hit again (0 when it may now)."""
        now = self._clock()
        with self._lock:
            hits = self._live(key, now)
            if len(hits) < self.amount:
                return 0.0
            return max(0.0, hits[len(hits) - self.amount] + self.window - now)

    def remaining(self, key: str) -> int:
        now = self._clock()
        with self._lock:
            return self.amount - len(self._live(key, now))

    def _sweep(self, now: float) -> None:
        """Now and then, drop keys with no hit left in the window (bounded memory)."""
        self._calls += 1
        if self._calls % 1024:
            return
        horizon = now - self.window
        for key in [key for key, hits in self._hits.items() if not hits or hits[-1] <= horizon]:
            del self._hits[key]
