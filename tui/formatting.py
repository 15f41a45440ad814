"""Times as the viewer reads them: HH:MM on messages, day separators, friend-list ages.

``Clock`` is injected everywhere a time is shown: the app's default is
``arrow.now`` (local zone); tests pass a fixed clock, and the clock's zone is the
viewer's zone, so snapshots do not depend on the machine's time zone.

A message's ``date_sent`` is Unix seconds (UTC) set by the server; files of the
original server may hold text, which arrow parses. Numbers take a fast path
(``datetime.fromtimestamp``): the chat view converts every loaded message once.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, tzinfo

import arrow

from tui.client.models import DateSent

Clock = Callable[[], arrow.Arrow]


def system_clock() -> arrow.Arrow:
    return arrow.now()


def to_local(date_sent: DateSent, zone: tzinfo | None) -> datetime | None:
    """A message's ``date_sent`` in the viewer's zone, or None when it is unreadable."""
    if date_sent is None or isinstance(date_sent, bool):
        return None
    try:
        if isinstance(date_sent, int | float):
            return datetime.fromtimestamp(float(date_sent), zone)
        text = str(date_sent).strip()
        try:
            return datetime.fromtimestamp(float(text), zone)
        except ValueError:
            return arrow.get(text).to(zone).datetime if zone else arrow.get(text).datetime
    except (arrow.parser.ParserError, ValueError, TypeError, OverflowError, OSError):
        return None


def clock_time(when: datetime | None) -> str:
    """HH:MM, on every message (the day is on the separator above it)."""
    return "--:--" if when is None else when.strftime("%H:%M")


def day_label(when: datetime | None, today: datetime) -> str:
    """The day separator's text: Today, Yesterday, or the full date."""
    if when is None:
        return "Unknown date"
    days = (today.date() - when.date()).days
    if days == 0:
        return "Today"
    if days == 1:
        return "Yesterday"
    return f"{when.strftime('%A')} {when.day} {when.strftime('%B %Y')}"


def short_activity(date_sent: DateSent, clock: Clock) -> str:
    """Compact last-activity text for the friend list: now, 5m, 3h, Mon, 23 Nov, 2024."""
    now = clock()
    when = to_local(date_sent, now.tzinfo)
    if when is None:
        return ""
    seconds = (now.datetime - when).total_seconds()
    if seconds < 60:
        return "now"
    if seconds < 3600:
        return f"{int(seconds // 60)}m"
    if when.date() == now.date():
        return f"{int(seconds // 3600)}h"
    if seconds < 6 * 86400:
        return when.strftime("%a")
    if when.year == now.year:
        return f"{when.day} {when.strftime('%b')}"
    return str(when.year)
