"""The wall clock, in the units pairchat stores: Unix seconds, and milliseconds for the
short-lived typing signals (kept in the accounts file so every worker sees them)."""

from __future__ import annotations

import time


def now_ms() -> int:
    return int(time.time() * 1000)
