"""Whether the server is reachable, and how long a loop waits before it tries again.

One :class:`Connection` is shared by the core's loops: any success marks the
server reachable and wakes every loop that is waiting to retry, so the status
line says "connected" as soon as one request gets through.

Two kinds of failure are retried differently:

- the server is *unreachable* (refused, reset, timed out): retried every
  ``PROBE_INTERVAL`` (about a second, with jitter). A refused connection costs the
  server nothing, and the user sees "connected" within two seconds of the server
  coming back, idle or not;
- the server *answered* with trouble (5xx, 429): exponential backoff up to
  ``MAX_BACKOFF``, with jitter, so a struggling server is not hammered by every
  client at once;
- the server answered with a ``Retry-After`` (a full server's 503): that long,
  plus up to a quarter more (jitter), and no sooner, even if another loop gets
  through meanwhile (the server said when it has room again).

Pure asyncio, no Textual; state changes are reported through ``on_change``.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from tui.client.http import ApiError, ServerUnreachable

PROBE_INTERVAL = 1.0
MAX_BACKOFF = 30.0


@dataclass(frozen=True)
class ConnectionState:
    """``connecting``, ``connected``, ``offline`` (unreachable) or ``trouble`` (5xx/429).

    ``retry_at`` (``time.monotonic()``) is when the next attempt is due.
    """

    state: str
    retry_at: float | None = None
    detail: str = ""


class Connection:
    def __init__(self, on_change: Callable[[ConnectionState], None]) -> None:
        self._on_change = on_change
        self.current = ConnectionState("connecting")
        self.online = asyncio.Event()
        self._failures = 0

    def _set(self, state: ConnectionState) -> None:
        if state != self.current:
            self.current = state
            self._on_change(state)

    def ok(self) -> None:
        """A request got an answer from the server."""
        self._failures = 0
        self.online.set()
        self._set(ConnectionState("connected"))

    def delay_after(self, exc: Exception) -> float:
        """Record a failure; the seconds to wait before the next attempt."""
        self.online.clear()
        if isinstance(exc, ServerUnreachable):
            delay = PROBE_INTERVAL * random.uniform(0.8, 1.2)
            self._set(ConnectionState("offline", time.monotonic() + delay))
            return delay
        self._failures += 1
        if isinstance(exc, ApiError) and exc.retry_after is not None:
            delay = max(exc.retry_after, PROBE_INTERVAL) * random.uniform(1.0, 1.25)
        else:
            delay = min(MAX_BACKOFF, 2.0 ** (self._failures - 1)) * random.uniform(1.0, 1.25)
        detail = exc.message if isinstance(exc, ApiError) else str(exc)
        self._set(ConnectionState("trouble", time.monotonic() + delay, detail))
        return delay

    async def recover(self, exc: Exception) -> None:
        """Wait before retrying after ``exc``, or less if another loop gets through
        (not after a ``Retry-After``: that is waited out)."""
        delay = self.delay_after(exc)
        if isinstance(exc, ApiError) and exc.retry_after is not None:
            await asyncio.sleep(delay)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.online.wait(), timeout=delay)
