"""The event stream's framing: Server-Sent Events as ``GET /events`` writes them.

One ``feed`` event per change of the caller's feed, its ``data`` exactly a
``/updates`` reply (``protocol.models.Feed``) on one line and its ``id`` that
reply's cursor, so a client resumes with ``Last-Event-ID`` without a gap or a
duplicate. A comment line keeps idle connections open through proxies; a last
``end`` event (``protocol.models.StreamEnd``) says why the server ended the stream.
The framing is the WHATWG HTML standard's "Server-sent events" section.
"""

from __future__ import annotations

from protocol.codec import encode
from protocol.models import Feed, StreamEnd

MEDIA_TYPE = "text/event-stream"
RETRY_MS = 2000
"""Milliseconds a client waits before reconnecting after a dropped stream (``retry:``)."""
REPLACED_RETRY_MS = 60_000
"""… and after the server ended it for the same user's newer stream (do not fight it)."""
HEARTBEAT = b": keep-alive\n\n"
HEADERS = {
    "Content-Type": f"{MEDIA_TYPE}; charset=utf-8",
    "X-Accel-Buffering": "no",  # nginx: pass each event on at once
}
"""With ``Cache-Control: no-store``, which the API sends on every reply."""


def retry(ms: int = RETRY_MS) -> bytes:
    return b"retry: %d\n\n" % ms


def feed_event(feed: Feed) -> bytes:
    """One change of the feed. JSON holds no raw line break, so ``data`` is one line."""
    return b"id: %s\nevent: feed\ndata: %s\n\n" % (feed.cursor.encode("ascii"), encode(feed))


def end_event(end: StreamEnd) -> bytes:
    head = retry(REPLACED_RETRY_MS) if end.reason == "replaced" else b""
    return head + b"event: end\ndata: %s\n\n" % encode(end)
