"""Long-polls asked again unchanged: parked again by the front, without running Flask.

A client holding a long-poll asks the same question again each time its wait
ends with nothing new: the same route, cursor, token, body. The first run of
that request in Flask decided everything — auth, validation, which key to wait
on (``Wait``), and the reply if nothing changes. While that key has not moved,
the same request gets the same answer, so the front (``backend/server/front.py``)
remembers, per request, what its parked run decided (a ``Repeat``) and parks
the next identical request straight away with that reply, on the event loop.

Why it is safe: a ``Wait`` already promises that its reply stands until its
key moves (the front sends it unchanged when a wait expires); a repeat keeps
that promise across requests, checking the key's version first. What a key
does not cover is checked again on each repeat: a bearer token is looked up
(revoked, expired or deleted: the request runs in Flask and gets its 401) —
except when the request waits on its own user's key (``/updates``): every way a
token is revoked (sign out, sign out everywhere, a new password, a removed SSH
key, a deleted account) moves that key, which ends the repeat, so the lookup
would only repeat what the key already says. That lookup was most of a
repeat's cost at 10,000 held feeds (docs/performance.md, "(g)"). With several
worker processes, a revocation moves the key in its own worker only: elsewhere a
revoked token's identical request may get the same unchanged reply it already
had, until anything changes for that user or ``MAX_AGE`` passes — never
anything new. Everything else a run depends on is in the request's bytes, which
must match exactly: method, path, query, every header, the body and the client
address.

Why it matters: at 10,000 held clients asking for 50 s each, 200 waits end
every second; a Flask run costs ~2 ms of CPU, a repeat a tenth of that
(docs/performance.md, "(g)"). The table is bounded (least recently used
entries go first) and an entry is used for at most ``MAX_AGE`` seconds.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from backend.wakeups.notify import Notifier, user_key

MAX_AGE = 1800.0
"""Seconds a remembered decision is reused before the request runs in Flask again."""

Fingerprint = tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class Repeat:
    """What a parked run decided: the key it waits on and the reply if nothing changes."""

    key: str
    seen: int
    owner: str | None
    wait: float  # seconds of waiting the run granted (what was asked, within the cap)
    token: str | None  # the bearer token the run accepted, checked again on each repeat
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes
    made: float  # time.monotonic() of the run


def fingerprint(scope: dict[str, Any], body: bytes) -> Fingerprint:
    """Everything of a request that its answer may depend on, as a dict key."""
    client = scope.get("client")
    return (
        scope["method"],
        scope.get("raw_path") or scope["path"],
        scope.get("query_string", b""),
        tuple(tuple(header) for header in scope["headers"]),
        body,
        client[0] if client else None,
    )


def needs_token_check(repeat: Repeat) -> bool:
    """Whether a repeat's token must be looked up again (see the module's docstring)."""
    if repeat.token is None:
        return False
    return repeat.owner is None or repeat.key != user_key(repeat.owner)


def bearer_token(headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    """The token of an ``Authorization: Bearer`` header (a run already checked its form)."""
    for name, value in headers:
        if name.lower() == b"authorization":
            return value.decode("latin-1").partition(" ")[2].strip() or None
    return None


class Repeats:
    """The remembered decisions of one worker, least recently used first."""

    def __init__(self, notifier: Notifier, limit: int) -> None:
        self._notifier = notifier
        self._limit = max(1, limit)
        self._table: OrderedDict[Fingerprint, Repeat] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._table)

    def find(self, key: Fingerprint) -> Repeat | None:
        """The decision for this request, if it still holds (its key has not moved)."""
        repeat = self._table.get(key)
        if repeat is None:
            self.misses += 1
            return None
        if (
            self._notifier.version(repeat.key) != repeat.seen
            or time.monotonic() - repeat.made > MAX_AGE
        ):
            del self._table[key]
            self.misses += 1
            return None
        self._table.move_to_end(key)
        self.hits += 1
        return repeat

    def remember(self, key: Fingerprint, repeat: Repeat) -> None:
        self._table[key] = repeat
        self._table.move_to_end(key)
        while len(self._table) > self._limit:
            self._table.popitem(last=False)

    def forget(self, key: Fingerprint) -> None:
        self._table.pop(key, None)
