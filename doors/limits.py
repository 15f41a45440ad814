"""How much one key, one address and everyone together may hold open at once.

A door counts what is open and refuses the one over the cap with a sentence a
person understands; nothing is queued. Counts are released exactly once by the
``Held`` token the caller got, however the session or connection ends.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass


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
    """One count taken in a :class:`Counts`; ``release()`` gives it back once."""

    def __init__(self, counts: Counts, names: tuple[str, ...]) -> None:
        self._counts = counts
        self._names: tuple[str, ...] | None = names

    def release(self) -> None:
        if self._names is not None:
            self._counts._give_back(self._names)
            self._names = None


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
        return Held(self, tuple(caps))

    def count(self, name: str) -> int:
        return self._open[name]

    def _give_back(self, names: tuple[str, ...]) -> None:
        for name in names:
            self._open[name] -= 1
            if self._open[name] <= 0:
                del self._open[name]
