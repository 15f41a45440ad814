"""Held requests without a thread: how a long-poll view hands its wait to the ASGI front.

The front (``backend/server/front.py``) marks each request's environ with ``ENABLED``.
A long-poll view calls its service through :func:`answer`, which offers the service a
``Parking`` (``backend/wakeups/long_poll.py``): a service that must wait leaves its
``Wait`` there and returns its result as it stands. ``answer`` replies with that
result as usual and leaves a :class:`Held` in the environ under ``PARKED``: the wait,
and how to finish the request without running it again — check its token once more
and turn the query's next result into a reply body. The front holds the reply and
waits on its event loop: if the wait ends with nothing changed (time out, the
owner's newer wait, a stop) it sends the held reply; if the key moved it calls
:meth:`Held.finish` in a pool thread — the query once, no second run of the view.
Without the front (Flask's test client, ``--dev``) nothing is offered and waits
block their thread.

``DEADLINE`` is for a request the front parked from memory (``backend/server/repeats.py``)
and then ran: that run waits only what is left of the wait (``wait_seconds``).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from flask import Response, request

from backend.http.auth import bearer_token
from backend.http.context import services
from backend.wakeups.long_poll import Parking, Wait
from backend.wakeups.notify import Notifier

ENABLED = "pairchat.park"
PARKED = "pairchat.parked"
DEADLINE = "pairchat.deadline"
STREAM = "pairchat.stream"
"""An event stream for the front to hold (``backend/http/events.py``'s ``FeedStream``)."""
FULL_MESSAGE = "the server holds as many clients as it can right now; try again later"
BACK_OFF = (10.0, 30.0)
"""Seconds a client answered early because the server is full is told to wait
(``Retry-After``): spread over this range so they do not all come back at once."""


def back_off() -> float:
    return random.uniform(*BACK_OFF)


def enabled() -> bool:
    return bool(request.environ.get(ENABLED))


def wait_seconds(requested: float) -> float:
    """The wait this run may still take: what was asked, or what is left of it."""
    deadline = request.environ.get(DEADLINE)
    if deadline is None:
        return requested
    return max(0.0, float(deadline) - time.monotonic())


T = TypeVar("T")


@dataclass
class Held:
    """A parked long-poll: its wait, and how to finish it once its key moves."""

    wait: Wait[Any]
    body: Callable[[Any], bytes]  # a query result -> the reply's body (as the view makes it)
    recheck: Callable[[], None]  # raises PairchatError if the request's token no longer stands

    def finish(self, notifier: Notifier) -> tuple[bytes, Wait[Any] | None]:
        """In a pool thread, after a wake: the reply body, and the wait to go on with
        when the change did not concern this request. ``PairchatError`` if the token was
        revoked meanwhile, or if the query failed (the front answers it as any error)."""
        self.recheck()
        result, more = self.wait.again(notifier)
        return self.body(result), more


def answer(call: Callable[[Parking | None], T], reply: Callable[[T], Response]) -> Response:
    """``reply(call(parking))``; if the call left a wait, the reply to its result as it
    stands, with the wait in the environ for the front."""
    parking = Parking() if enabled() else None
    result = call(parking)
    if parking is not None and parking.held is not None:
        request.environ[PARKED] = Held(
            parking.held, lambda found: reply(found).get_data(), _recheck()
        )
    return reply(result)


def _recheck() -> Callable[[], None]:
    """Checks this request's bearer token again (a no-op without one: open mode)."""
    token = bearer_token()  # its form was checked by the auth hook already
    if token is None:
        return _nothing
    accounts = services().accounts

    def recheck() -> None:
        accounts.authenticate(token)

    return recheck


def _nothing() -> None:
    return None
