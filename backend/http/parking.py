"""Held requests without a thread: how a long-poll view and the ASGI front talk.

The front (``backend/front.py``) marks each request's environ with ``ENABLED``.
A long-poll view passes ``enabled()`` to its service as ``park``; when the
service must wait it raises ``Park`` (``backend/notify.py``), which
``register`` turns into a placeholder reply, leaving the ``Park`` in the
environ under ``PARKED``. The front then awaits the wake-up on its event loop
and runs the request again with ``DEADLINE`` set, so the second run waits only
what is left (``wait_seconds``) and answers. Without the front (Flask's test
client, ``--dev``) nothing is marked and waits block their thread as before.
"""

from __future__ import annotations

import time

from flask import Flask, request
from flask.typing import ResponseReturnValue

from backend.notify import Park

ENABLED = "pairchat.park"
PARKED = "pairchat.parked"
DEADLINE = "pairchat.deadline"


def enabled() -> bool:
    return bool(request.environ.get(ENABLED))


def wait_seconds(requested: float) -> float:
    """The wait this run may still take: what was asked, or what is left of it."""
    deadline = request.environ.get(DEADLINE)
    if deadline is None:
        return requested
    return max(0.0, float(deadline) - time.monotonic())


def register(app: Flask) -> None:
    app.register_error_handler(Park, _parked)


def _parked(park: Park) -> ResponseReturnValue:
    request.environ[PARKED] = park
    return "", 204
