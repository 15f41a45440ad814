"""A long-poll, decided in one place: answer now, block this thread, or hand the wait over.

``long_poll`` runs a query until it has something to answer or the wait ends. Where
it must wait, it either blocks its thread on the notifier (Flask's test client, the
development server) or — when the caller offers a :class:`Parking` (the ASGI front
does, through ``backend/http/parking.py``) — records a :class:`Wait` there and
returns the result as it stands. That record is the one way a service says "park
this": no exception, no control passed through the layers.

A :class:`Wait` carries what the holder needs to finish the request *without
running it again*: the key and version to wait on, the deadline, whose wait it is
(the per-user cap), and the query with its readiness test. When the key moves, the
holder calls :meth:`Wait.again` — the query alone, once — and either answers with its
result or, if the move did not concern this request, waits on (``next``), with the
version read before that query so nothing that lands meanwhile is missed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Generic, TypeVar

from backend.wakeups.notify import Notifier

T = TypeVar("T")


@dataclass(frozen=True)
class Wait(Generic[T]):
    """A long-poll that found nothing yet, for a holder to finish."""

    key: str
    seen: int  # the key's version read before the query that found nothing
    deadline: float  # on ``time.monotonic()``'s clock
    owner: str | None  # whose wait it is (the per-user cap)
    query: Callable[[], T]
    ready: Callable[[T], bool]

    def again(self, notifier: Notifier) -> tuple[T, Wait[T] | None]:
        """After the key moved: the query once more; its result, and the wait to go on
        with if there is still nothing for this request and time left (else None)."""
        seen = notifier.version(self.key)
        result = self.query()
        if self.ready(result) or time.monotonic() >= self.deadline or notifier.closed:
            return result, None
        return result, replace(self, seen=seen)


class Parking:
    """A holder's offer to take a long-poll's wait (``held``) instead of blocking a thread."""

    __slots__ = ("held",)

    def __init__(self) -> None:
        self.held: Wait[object] | None = None


def long_poll(
    notifier: Notifier,
    key: str,
    wait: float,
    query: Callable[[], T],
    ready: Callable[[T], bool],
    owner: str | None = None,
    parking: Parking | None = None,
) -> T:
    """``query()`` as soon as it is ``ready``, or when ``wait`` (already capped) ends.

    The key's version is read *before* each query, so a change that lands between
    the query and the wait wakes it at once (no lost wake-up).
    """
    deadline = time.monotonic() + wait
    while True:
        seen = notifier.version(key)
        result = query()
        remaining = deadline - time.monotonic()
        if ready(result) or remaining <= 0 or notifier.closed:
            return result
        if parking is not None:
            parking.held = Wait(key, seen, deadline, owner, query, ready)  # type: ignore[arg-type]
            return result
        if not notifier.wait(key, seen, remaining, owner):
            return result
