"""Exponential backoff with a cap, shared by every retry loop of the client.

Pure arithmetic (no sleeping, no Textual): a loop asks for the next delay after a
failure, sleeps it in its own worker, and resets on success.
"""

from __future__ import annotations

import random


class Backoff:
    def __init__(
        self, base: float = 1.0, cap: float = 10.0, factor: float = 2.0, jitter: float = 0.1
    ) -> None:
        self.base = base
        self.cap = cap
        self.factor = factor
        self.jitter = jitter
        self.failures = 0

    def next_delay(self) -> float:
        """The delay before the next attempt; each call doubles it up to ``cap``."""
        delay = min(self.cap, self.base * self.factor**self.failures)
        self.failures += 1
        return delay * (1 + random.uniform(0, self.jitter))

    def reset(self) -> None:
        self.failures = 0
