"""Failed-login limits: per client address, atomic, and unable to lock a user out.

Every password check is paid for *before* it runs: ``reserve`` takes one hit
from the client address's budget in one atomic step, or refuses with
``RateLimited`` without checking anything. A right password gives the hit back
(``succeeded``); a wrong one keeps it. So 60 parallel guesses against a limit
of 10 make at most 10 password checks.

The budget is per address (across usernames, so spraying many accounts is
stopped too), never per username: failures for ``bob`` from one address never
stop ``bob``'s right password from another (an attacker could otherwise lock
anyone out). The address is the real client's when the
server is told how many proxies to trust (``--trusted-proxies``, Werkzeug's
ProxyFix), and a door's visitor's when the door vouches for it
(``backend.http.door.DoorClientAddress``). The refusal says how long to wait,
counted from the oldest failure still in the window. In memory, per worker process.
"""

from __future__ import annotations

from backend.core.errors import RateLimited
from backend.limits.rate_limit import Limiter, in_words


class LoginThrottle:
    def __init__(self, rate: str) -> None:
        self._limiter = Limiter(rate)

    def reserve(self, address: str | None) -> None:
        """Pay for one password check, or ``RateLimited`` when this address has used its budget."""
        key = address or "unknown"
        if not self._limiter.take(key):
            seconds = self._limiter.wait(key)
            raise RateLimited(
                f"too many wrong passwords from your address: try again in {in_words(seconds)}",
                retry_after=seconds,
            )

    def succeeded(self, address: str | None) -> None:
        """A right password: the reserved check does not count as a failure."""
        self._limiter.give_back(address or "unknown")
