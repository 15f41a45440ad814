"""Server-Sent Events as ``GET /events`` sends them: bytes in, typed items out (no I/O).

:class:`EventParser` follows the WHATWG HTML standard's "Interpreting an event
stream": lines end with CRLF, LF or CR (and only those: a raw U+2028 inside a
JSON string is not a line break, which ``str.splitlines`` and httpx's
``aiter_lines`` would take it for); ``data`` lines of one event are joined with
LF; a line starting with ``:`` is a comment (the server's ``: keep-alive``); an
``id`` is the event's cursor; ``retry`` is the reconnection time the server
advises. It takes the body in chunks of any size, split anywhere (a CRLF across
two chunks is one line break).

:func:`read_item` turns an event into what the client acts on, decoded once here:
a ``feed`` event is a :class:`~tui.client.models.Feed` (exactly a ``/updates``
reply), an ``end`` event a :class:`StreamEnd`. Events of other types are left out,
so a server may add some without breaking an older client.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from protocol import DecodeError, decode
from tui.client.models import BadReply, Feed

MAX_LINE = 32 * 1024 * 1024
"""Bytes of one line before the stream is refused (a whole feed is one ``data`` line)."""
_NEWLINE = re.compile(rb"\r\n|\r|\n")


@dataclass(frozen=True)
class ServerEvent:
    """One dispatched event: its type (``message`` when the stream gave none), its
    data, and the last event id seen so far (the stream's cursor)."""

    event: str
    data: str
    id: str | None = None


@dataclass(frozen=True)
class Retry:
    """The ``retry:`` field: how long the server asks a client to wait before reconnecting."""

    milliseconds: int

    @property
    def seconds(self) -> float:
        return self.milliseconds / 1000


@dataclass(frozen=True)
class StreamEnd:
    """The server's last event before it closes the stream.

    ``reason``: ``shutdown`` (it is stopping: reconnect as after any disconnect),
    ``replaced`` (this user holds more streams and long-polls than the server allows,
    and this was the oldest: do not fight back), ``unauthorized`` (the token was
    revoked: the next request gets a 401). Another word reads like ``shutdown``."""

    reason: str
    message: str = ""


StreamItem = Feed | StreamEnd | Retry
"""What :meth:`tui.client.http.PairchatClient.events` yields."""


class EventParser:
    """The event stream's framing, incrementally: :meth:`feed` a chunk, get what it completed."""

    def __init__(self) -> None:
        self._partial = b""
        self._skip_lf = False
        """The last chunk ended with CR: an LF opening the next one belongs to it."""
        self._first_line = True
        self._event = ""
        self._data: list[str] = []
        self.last_id: str | None = None
        self.retry: int | None = None
        """Milliseconds of the last valid ``retry:`` field, if any."""

    def feed(self, chunk: bytes) -> list[ServerEvent | Retry]:
        """The events (and ``retry`` changes) that ``chunk`` completes, in stream order."""
        found: list[ServerEvent | Retry] = []
        for line in self._lines(chunk):
            item = self._line(line)
            if item is not None:
                found.append(item)
        return found

    def _lines(self, chunk: bytes) -> list[str]:
        if self._skip_lf and chunk[:1] == b"\n":
            chunk = chunk[1:]
        self._skip_lf = False
        if not chunk:
            return []
        data = self._partial + chunk
        lines: list[str] = []
        start = 0
        for match in _NEWLINE.finditer(data):
            lines.append(self._text(data[start : match.start()]))
            start = match.end()
        if start and data[start - 1 : start] == b"\r":
            self._skip_lf = True  # a lone CR at the end: the LF may come in the next chunk
        self._partial = data[start:]
        if len(self._partial) > MAX_LINE:
            raise BadReply(f"an event stream line longer than {MAX_LINE} bytes")
        return lines

    def _text(self, line: bytes) -> str:
        text = line.decode("utf-8", errors="replace")
        if self._first_line:
            self._first_line = False
            text = text.removeprefix("\ufeff")
        return text

    def _line(self, line: str) -> ServerEvent | Retry | None:
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None  # a comment: the server's keep-alive
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        elif name == "id":
            if "\0" not in value:
                self.last_id = value
        elif name == "retry" and value.isascii() and value.isdigit():
            self.retry = int(value)
            return Retry(self.retry)
        return None  # other fields are ignored, as the standard says

    def _dispatch(self) -> ServerEvent | None:
        data, event = self._data, self._event
        self._data, self._event = [], ""
        if not data:
            return None
        return ServerEvent(event or "message", "\n".join(data), self.last_id)


def read_item(event: ServerEvent) -> Feed | StreamEnd | None:
    """What ``event`` means to the client; None for an event type it does not know.

    Raises :class:`~tui.client.models.BadReply` when a known event's data does not fit."""
    if event.event == "feed":
        return Feed.parse(event.data.encode())
    if event.event == "end":
        try:
            found = decode(event.data.encode(), dict[str, Any])
        except DecodeError as exc:
            raise BadReply(f"an 'end' event that cannot be read: {exc}") from None
        reason, message = found.get("reason"), found.get("message")
        return StreamEnd(
            reason if isinstance(reason, str) else "",
            message if isinstance(message, str) else "",
        )
    return None
