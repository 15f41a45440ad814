"""``GET /events``: the caller's change feed as one stream of Server-Sent Events.

The view does what every request does — auth, the cursor (``Last-Event-ID`` or
``since``), the first query — and answers with the stream's opening: the
``retry`` time and a first ``feed`` event (everything without a cursor, what
changed since it with one; possibly nothing, so a client sees at once that the
stream is live and not held back by a buffering proxy). What follows is a
:class:`FeedStream`:

- under the production server the ASGI front (``backend/server/front.py``) takes
  it from the environ (``parking.STREAM``) and holds it on its event loop with a
  ``Listener`` slot: no thread and no Flask run while idle, a keep-alive comment
  on the shared tick every ``stream_heartbeat`` seconds, and :meth:`FeedStream.step`
  in a pool thread only when the user's key moves;
- under Flask's test client or the development server its :meth:`blocking`
  generator does the same in the request's thread.

Each step checks the token first: every way a token is revoked moves the user's
key, so a revoked, expired or deleted account's stream ends (``end`` event,
``unauthorized``) as soon as that happens.
"""

from __future__ import annotations

from collections.abc import Iterator

from flask import Blueprint, Response, request
from flask.typing import ResponseReturnValue

from backend.core.errors import PairchatError, ServerFull
from backend.core.usernames import Username
from backend.http import auth, parking, replies
from backend.http import request_data as data
from backend.http.context import services
from backend.services.wiring import Services
from backend.wakeups.notify import Outcome, user_key
from protocol import events as sse
from protocol import models as wire

bp = Blueprint("events", __name__)
RESUME_HEADER = "Last-Event-ID"
REPLACED = (
    "you have more live connections than the server holds per user; "
    "this one, the oldest, was closed"
)
SHUTDOWN = "the server is stopping; reconnect in a moment"


class FeedStream:
    """One client's stream: its user, token and cursor, and the key it listens on.

    Thousands are held for hours: slots, and nothing of the request kept."""

    __slots__ = (
        "_accounts",
        "_chat",
        "_cursor",
        "_since",
        "_token",
        "heartbeat",
        "key",
        "me",
        "notifier",
        "owner",
        "seen",
    )

    def __init__(self, found: Services, me: Username, token: str, since: int | None) -> None:
        self._chat = found.chat
        self._accounts = found.accounts
        self.notifier = found.notifier
        self.heartbeat = found.settings.stream_heartbeat
        self.me = me
        self.owner: str = me
        self.key = user_key(me)
        self._token = token
        self._since = since
        self._cursor = 0
        self.seen = 0
        """The key's version read before the last query: a change after it wakes the stream."""

    def opening(self) -> bytes:
        """The ``retry`` time and the first event (in the view, so errors are JSON replies)."""
        self.seen = self.notifier.version(self.key)
        feed = self._chat.updates(self.me, self._since)
        self._cursor = feed.cursor
        return sse.retry() + sse.feed_event(replies.feed_model(feed))

    def step(self) -> tuple[bytes, bool]:
        """After a wake (in a pool thread): the events to send, and whether the stream ends."""
        try:
            self._accounts.authenticate(self._token)
        except PairchatError as exc:
            return self.end("unauthorized", exc.message), True
        self.seen = self.notifier.version(self.key)
        feed = self._chat.updates(self.me, self._cursor)
        self._cursor = feed.cursor
        if not feed.changed:
            return b"", False
        return sse.feed_event(replies.feed_model(feed)), False

    @staticmethod
    def end(reason: str, message: str) -> bytes:
        return sse.end_event(wire.StreamEnd(reason=reason, message=message))  # type: ignore[arg-type]

    def blocking(self, opening: bytes) -> Iterator[bytes]:
        """The stream in this thread (no ASGI front): the test client, ``--dev``."""
        yield opening
        notifier = self.notifier
        while not notifier.closed:
            outcome = notifier.wait_outcome(self.key, self.seen, self.heartbeat, self.owner)
            if outcome is Outcome.TIMEOUT:
                yield sse.HEARTBEAT
                continue
            if outcome is Outcome.RELEASED:
                yield self.end("replaced", REPLACED)
                return
            if outcome is Outcome.FULL:
                yield self.end("shutdown", "the server is full; reconnect later")
                return
            if notifier.closed:
                break
            events, ended = self.step()
            if events:
                yield events
            if ended:
                return
        yield self.end("shutdown", SHUTDOWN)


def _resume_cursor() -> int | None:
    """``Last-Event-ID`` (what an EventSource sends on reconnecting), else ``since``."""
    header = request.headers.get(RESUME_HEADER)
    if header is None or header.strip() == "":
        return data.cursor("since")
    return data.parse_cursor(header.strip(), f"'{RESUME_HEADER}' must be a cursor (an event's id)")


@bp.get("/events")
@auth.user
def events() -> ResponseReturnValue:
    found = services()
    token = auth.bearer_token()
    assert token is not None  # a ``user`` route: authenticate() required it
    stream = FeedStream(found, auth.current_user(), token, _resume_cursor())
    if found.notifier.full():
        raise ServerFull(parking.FULL_MESSAGE, retry_after=parking.back_off())
    opening = stream.opening()
    if parking.enabled():
        request.environ[parking.STREAM] = stream
        return Response(opening, headers=sse.HEADERS)
    return Response(stream.blocking(opening), headers=sse.HEADERS)
