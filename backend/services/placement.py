"""Multi-node mode: a node serves only the pairs the placement map gives it.

``Placement.check`` runs before every use of a pair's file (the conversation
store calls it): the pair's owner is looked up in PostgreSQL and the answer is
kept for ``ttl`` seconds; a write to an unplaced pair claims it for this node.
It refuses with a 503 (``PairElsewhere``) when another node owns the pair or the
pair is being moved, and with ``NodeFenced`` when this node was fenced by a
failover: a node never serves, and never creates, a copy of a conversation
that is not its own — not even after it comes back from the dead.

Only the router places pairs: it names the pair it hashed in ``X-Pairchat-Pair``,
and an HTTP request claims an unplaced pair only when that header names it. A
request the router could not read (a multipart body, say) reaches a node by
round robin without the header: it may read, but never claim — otherwise that
node could take a pair whose hash points elsewhere and split the routing.
Outside HTTP (operator commands, tests) ``ROUTED_PAIR`` is unset and claims work.

Operator commands (``pairchat-server placement …``) publish on the
``pairchat:placement`` channel, and every node drops its cached answers at
once; the ``ttl`` bounds how long a node that missed that message (Redis down)
can keep serving a pair that moved away, so a move waits that long after
fencing the pair before it copies the file (``MOVE_SETTLE``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from contextvars import ContextVar
from typing import TYPE_CHECKING

from backend.core.errors import NodeFenced, PairElsewhere
from backend.core.usernames import canonical_pair, pair_file_name

if TYPE_CHECKING:  # psycopg is loaded only in multi-node mode
    from backend.storage.placement import PlacementStore

PLACEMENT_CHANNEL = "pairchat:placement"
ROUTED_HEADER = "X-Pairchat-Pair"
ROUTED_PAIR: ContextVar[str | None] = ContextVar("routed_pair", default=None)
"""The pair the router named for this request ("" for none); unset outside HTTP."""
TTL = 2.0
"""Seconds a node trusts a cached owner (or its own fence state) without asking again."""
MOVE_SETTLE = TTL + 1.0
"""Seconds a move waits after fencing a pair: every node's cached answer has expired."""


def pair_name(user_one: str, user_two: str) -> str:
    """The pair as the placement map and the router name it: the file's stem (``alice_bob``)."""
    return pair_file_name(*canonical_pair(user_one, user_two)).removesuffix(".db")


class Placement:
    def __init__(
        self,
        store: PlacementStore,
        node: str,
        *,
        ttl: float = TTL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.node = node
        self._ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._mine: dict[str, float] = {}  # pair -> when this node last saw it was its own
        self._fenced_at: tuple[bool, float] | None = None

    def start(self, url: str) -> None:
        """Record this node (and its URL) in the map."""
        fenced = self.store.register_node(self.node, url)
        with self._lock:
            self._fenced_at = (fenced, self._clock())

    def check(self, pair: str, *, create: bool) -> None:
        """Raise unless this node may use ``pair``'s file now (``create``: may place it)."""
        if self._fenced():
            raise NodeFenced(f"node {self.node} is fenced: it serves no conversation")
        now = self._clock()
        with self._lock:
            seen = self._mine.get(pair)
        if seen is not None and now - seen < self._ttl:
            return
        owner = self.store.owner(pair)
        if owner is None:
            if not create:
                return  # nobody has it: an empty history, and no file is made
            routed = ROUTED_PAIR.get()
            if routed is not None and routed != pair:
                raise PairElsewhere(
                    "this conversation's first message must come through the router "
                    "(a form or JSON body naming both users)"
                )
            owner = self.store.claim(pair, self.node)
        if owner.node != self.node:
            raise PairElsewhere("this conversation is served by another node; try again")
        if owner.moving:
            raise PairElsewhere("this conversation is being moved; try again in a few seconds")
        with self._lock:
            if len(self._mine) > 100_000:
                self._mine.clear()
            self._mine[pair] = now

    def forget(self, pair: str | None = None) -> None:
        """Drop cached answers (one pair, or all): called for ``pairchat:placement`` messages."""
        with self._lock:
            if pair is None:
                self._mine.clear()
                self._fenced_at = None
            else:
                self._mine.pop(pair, None)

    def _fenced(self) -> bool:
        now = self._clock()
        with self._lock:
            known = self._fenced_at
        if known is not None and now - known[1] < self._ttl:
            return known[0]
        fenced = self.store.fenced(self.node)
        with self._lock:
            self._fenced_at = (fenced, now)
        return fenced
