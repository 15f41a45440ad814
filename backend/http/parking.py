"""Held requests without a thread: how a long-poll view and the ASGI front talk.

The front (``backend/server/front.py``) marks each request's environ with ``ENABLED``.
A long-poll view calls its service through ``answer``: when the service must
wait it raises ``Park`` (``backend/wakeups/notify.py``) carrying the result as it
stands; ``answer`` replies with that result as usual and leaves the ``Park`` in
the environ under ``PARKED``. The front holds that reply and waits on its event
loop: if the wait ends with nothing changed (time out, the owner's newer wait,
a stop) it sends the held reply; if the key moved it runs the request again
with ``DEADLINE`` set, so the second run waits only what is left
(``wait_seconds``). Without the front (Flask's test client, ``--dev``) nothing
is marked and waits block their thread as before.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

from flask import request

from backend.wakeups.notify import Park

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
R = TypeVar("R")


def answer(call: Callable[[bool], T], reply: Callable[[T], R]) -> R:
    """``reply(call(park))``; if the call parks, the reply to its result as it stands."""
    try:
        return reply(call(enabled()))
    except Park as park:
        # Its traceback would tie this run's frames (the request, the app context) into a
        # cycle that only a full garbage collection frees: with thousands held, the
        # collector then walks them all (a pause), so the Park leaves without it.
        park.__traceback__ = None
        request.environ[PARKED] = park
        return reply(park.result)  # type: ignore[arg-type]
