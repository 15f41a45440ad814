"""Rate limit for failed logins, per client address and per username.

Built on ``limits`` (the library under Flask-Limiter) used directly, so only
``/login`` pays for it: an extension's before/after hooks would run on every
request, long-polls included. In memory, per worker process.
"""

from __future__ import annotations

from limits import parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from backend.errors import RateLimited


class LoginThrottle:
    def __init__(self, rate: str) -> None:
        self._item = parse(rate)
        self._limiter = MovingWindowRateLimiter(MemoryStorage())

    @staticmethod
    def _keys(address: str | None, username: str) -> list[tuple[str, str]]:
        return [("address", address or "unknown"), ("username", username.lower())]

    def check(self, address: str | None, username: str) -> None:
        """``RateLimited`` once either key has used up its failures."""
        for key in self._keys(address, username):
            if not self._limiter.test(self._item, *key):
                raise RateLimited("too many failed logins; wait a minute")

    def failed(self, address: str | None, username: str) -> None:
        for key in self._keys(address, username):
            self._limiter.hit(self._item, *key)
