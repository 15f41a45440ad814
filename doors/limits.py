"""How much one key, one address and everyone together may hold open at once, and the
door's sessions as an operator sees them.

A door counts what is open and refuses the one over the cap with a sentence a
person understands; nothing is queued. Counts are released exactly once by the
``Held`` token the caller got, however the session or connection ends.

A take under a door's whole cap (``SESSION_CAPS``: the SSH door's ``sessions``, the
web door's ``tabs``) is a session: it gets an id (``ssh-1a2b3c4d``), logged when the
session opens and ends, which its TUI sends on every API call as ``X-Request-Id``
(``doors/session_env.py``, ``tui/door.py``) so the server's request log ties them
together; and it is counted for Prometheus - ``pairchat_door_sessions{door}`` open now,
``pairchat_door_sessions_started_total{door}``. Started by ``pairchat-server serve
--metrics-port``, the door inherits the server's metrics folder
(``PROMETHEUS_MULTIPROC_DIR``) and its figures are in the server's scrape; alone, they
stay in the process.
"""

from __future__ import annotations

import contextvars
import logging
import secrets
import time
from collections import Counter
from dataclasses import dataclass

from prometheus_client import Counter as MetricCounter
from prometheus_client import Gauge

log = logging.getLogger(__name__)

SESSION_CAPS = {"sessions": "ssh", "tabs": "web"}
"""The cap name that makes a take a session -> the door it is a session of."""
ADDRESS_CAPS = ("sessions-from:", "tabs-from:")
"""Cap names that carry the session's client address (for the log line)."""

SESSIONS_OPEN = Gauge(
    "pairchat_door_sessions",
    "Door sessions open now (SSH sessions, browser tabs), by door.",
    ["door"],
    multiprocess_mode="livesum",
)
SESSIONS_STARTED = MetricCounter(
    "pairchat_door_sessions_started",
    "Door sessions started (past the caps), by door.",
    ["door"],
)
CURRENT_SESSION: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "pairchat_door_session", default=None
)
"""The id of the session taken last in this context: a task made after the take sees it."""


@dataclass(frozen=True)
class Limits:
    sessions_per_key: int = 5
    """TUI sessions one SSH key may have open at once (over all its connections)."""
    sessions_per_address: int = 20
    """TUI sessions from one client address (people behind one NAT share it)."""
    connections_per_address: int = 20
    """SSH connections from one client address, signed in or not; one more is closed
    at once, as OpenSSH's PerSourceMaxStartups does."""
    sessions: int = 200
    """TUI sessions on this door in all."""
    login_timeout: float = 30.0
    """Seconds a connection has to authenticate (the grace time)."""
    keepalive_interval: float = 30.0
    """Seconds between keepalives to a quiet client; 3 unanswered end the connection."""
    signin_idle: float = 300.0
    """Seconds without a key on a screen that is not signed in (the claim screen, the
    sign-in screen) before the session ends: a visitor who never signs in cannot hold
    a slot. 0: never."""
    idle: float = 0.0
    """The same for a signed-in session; 0 (the default): never, since a chat left open to
    read is what pairchat is for (docs/doors.md)."""

    def __post_init__(self) -> None:
        for name in (
            "sessions_per_key",
            "sessions_per_address",
            "connections_per_address",
            "sessions",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.login_timeout <= 0 or self.keepalive_interval <= 0:
            raise ValueError("login_timeout and keepalive_interval must be positive")
        if self.signin_idle < 0 or self.idle < 0:
            raise ValueError("the idle timeouts must be 0 (never) or positive")


class Held:
    """One count taken in a :class:`Counts`; ``release()`` gives it back once.

    ``session`` is the session's id when the take was a session (``SESSION_CAPS``)."""

    def __init__(self, counts: Counts, names: tuple[str, ...], door: str | None = None) -> None:
        self._counts = counts
        self._names: tuple[str, ...] | None = names
        self.door = door
        self.session = None if door is None else f"{door}-{secrets.token_hex(4)}"
        self.started = time.monotonic()

    def release(self) -> None:
        if self._names is not None:
            self._counts._give_back(self._names)
            self._names = None
            if self.door is not None:
                SESSIONS_OPEN.labels(self.door).dec()
                took = time.monotonic() - self.started
                log.info("%s session %s ended after %.0f s", self.door, self.session, took)


class Counts:
    """Open things per name, with a cap per name."""

    def __init__(self) -> None:
        self._open: Counter[str] = Counter()

    def take(self, caps: dict[str, int]) -> Held | None:
        """One more for every name in ``caps``, or None (and nothing taken) if any is full."""
        if any(self._open[name] >= cap for name, cap in caps.items()):
            return None
        for name in caps:
            self._open[name] += 1
        door = next((SESSION_CAPS[name] for name in caps if name in SESSION_CAPS), None)
        held = Held(self, tuple(caps), door)
        if door is not None:
            SESSIONS_OPEN.labels(door).inc()
            SESSIONS_STARTED.labels(door).inc()
            CURRENT_SESSION.set(held.session)
            address = next(
                (name.split(":", 1)[1] for name in caps if name.startswith(ADDRESS_CAPS)), "?"
            )
            log.info("%s session %s opened from %s", door, held.session, address)
        return held

    def count(self, name: str) -> int:
        return self._open[name]

    def _give_back(self, names: tuple[str, ...]) -> None:
        for name in names:
            self._open[name] -= 1
            if self._open[name] <= 0:
                del self._open[name]
