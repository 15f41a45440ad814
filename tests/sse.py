"""A test's reader of ``GET /events``: the stream's events one at a time, as a client sees them.

Deliberately independent of the TUI's parser (tui/client/events.py): the tests read
the wire with their own few lines of the WHATWG framing.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.support import bearer


@dataclass
class Event:
    kind: str  # "feed", "end", or "comment" for a keep-alive line
    data: Any = None
    id: str | None = None
    retry: int | None = None


@dataclass
class Stream:
    """An open stream; ``next()`` is its next event or comment (a read timeout fails the test)."""

    response: httpx.Response
    _lines: Iterator[str] = field(init=False)
    retry: int | None = None

    def __post_init__(self) -> None:
        self._lines = self.response.iter_lines()

    def next(self, *, comments: bool = False, within: float = 10.0) -> Event:
        """The next event (or comment, with ``comments``); ``TimeoutError`` after ``within``
        seconds of keep-alives only (a read timeout covers a silent stream)."""
        deadline = time.monotonic() + within
        fields: dict[str, str] = {}
        data: list[str] = []
        for line in self._lines:
            if time.monotonic() > deadline:
                raise TimeoutError(f"no event within {within} s")
            if line == "":
                if data or "event" in fields:
                    kind = fields.get("event", "message")
                    return Event(kind, json.loads("\n".join(data)), fields.get("id"), self.retry)
                continue
            if line.startswith(":"):
                if comments:
                    return Event("comment", line[1:].strip())
                continue
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "data":
                data.append(value)
            elif name == "retry":
                self.retry = int(value)
            else:
                fields[name] = value
        raise EOFError("the stream ended")


@contextlib.contextmanager
def open_stream(
    client: httpx.Client,
    url: str,
    token: str,
    *,
    last_event_id: str | None = None,
    since: str | None = None,
) -> Iterator[Stream]:
    headers = bearer(token)
    if last_event_id is not None:
        headers["Last-Event-ID"] = last_event_id
    params = {"since": since} if since is not None else None
    request = client.build_request("GET", f"{url}/events", headers=headers, params=params)
    response = client.send(request, stream=True)
    try:
        yield Stream(response)
    finally:
        response.close()
