"""Request ids: which request a log line is about, and whose (a door session's) it is.

Every reply carries ``X-Request-Id`` (``backend/http/middleware.py``). A client may
choose it - a door's session sends its session id on every call (``doors/session_env.py``,
``tui/door.py``), so one grep finds a session's requests - but only in a safe form:
1 to 64 characters of ``A-Z a-z 0-9 . _ : -``, starting with a letter or digit (no
spaces, quotes or control characters to forge or break a log line). Anything else is
ignored and the server makes one: a per-process prefix and a counter.

``CURRENT`` holds the id of the request a thread is serving, for the log formatters
(``backend/server/logs.py``) to add to any line logged meanwhile.
"""

from __future__ import annotations

import itertools
import os
import re
import secrets
from contextvars import ContextVar

HEADER = "X-Request-Id"
MAX_LENGTH = 64
SAFE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")

CURRENT: ContextVar[str | None] = ContextVar("pairchat_request_id", default=None)


def is_safe(given: str) -> bool:
    """Whether a client-chosen id may be used (and logged) as it is."""
    return len(given) <= MAX_LENGTH and SAFE.fullmatch(given) is not None


class RequestIds:
    """This process's ids: ``<pid in hex><4 random hex>-<counter in hex>``, unique per run."""

    def __init__(self) -> None:
        self.prefix = f"{os.getpid():x}{secrets.token_hex(2)}"
        self._next = itertools.count(1).__next__  # atomic under the GIL

    def for_request(self, given: str | None) -> str:
        """The client's id if it is safe, else a new one."""
        if given is not None and is_safe(given):
            return given
        return f"{self.prefix}-{self._next():x}"
