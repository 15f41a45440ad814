"""Pure formatting helpers: message times (arrow, viewer's zone) and safe user text.

``Clock`` is injected everywhere a time is shown: the app's default is
``arrow.now`` (local zone); tests pass a fixed clock, and the clock's zone is the
viewer's zone, so snapshots do not depend on the machine's time zone.

User text is plain text: it goes into ``rich.text.Text`` (never parsed as
markup), and control characters that a terminal would act on are made visible.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import arrow
from rich.text import Text

Clock = Callable[[], arrow.Arrow]

_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def system_clock() -> arrow.Arrow:
    return arrow.now()


def safe(text: object) -> str:
    """User text with terminal control characters replaced by visible ones."""
    return _CONTROL.sub(lambda m: f"^{chr((ord(m.group()) + 64) % 128)}", str(text))


def plain(text: object, style: str = "") -> Text:
    """A Rich ``Text`` of user content: no markup, no emoji codes, no controls."""
    return Text(safe(text), style=style)


def to_local(date_sent: Any, clock: Clock) -> arrow.Arrow | None:
    """A message's ``date_sent`` (Unix seconds; seed files may hold text) in the viewer's zone."""
    if date_sent is None or isinstance(date_sent, bool):
        return None
    tz = clock().tzinfo
    try:
        if isinstance(date_sent, int | float):
            return arrow.get(float(date_sent)).to(tz)
        text = str(date_sent).strip()
        try:
            return arrow.get(float(text)).to(tz)
        except ValueError:
            return arrow.get(text).to(tz)
    except (arrow.parser.ParserError, ValueError, TypeError, OverflowError):
        return None


def message_time(date_sent: Any, clock: Clock) -> str:
    """Relative today ("5 minutes ago"), a date and time before."""
    when = to_local(date_sent, clock)
    if when is None:
        return safe(date_sent) if date_sent is not None else ""
    now = clock()
    if when.date() == now.date():
        if abs((now - when).total_seconds()) < 45:
            return "just now"
        return when.humanize(now)
    if when.year == now.year:
        return when.format("ddd D MMM HH:mm")
    return when.format("D MMM YYYY HH:mm")


def day_label(date_sent: Any, clock: Clock) -> str:
    """The day separator's text: Today, Yesterday, or the full date."""
    when = to_local(date_sent, clock)
    if when is None:
        return "Unknown date"
    today = clock().date()
    days = (today - when.date()).days
    if days == 0:
        return "Today"
    if days == 1:
        return "Yesterday"
    return when.format("dddd D MMMM YYYY")


def day_key(date_sent: Any, clock: Clock) -> str:
    when = to_local(date_sent, clock)
    return "?" if when is None else when.format("YYYY-MM-DD")


def short_activity(date_sent: Any, clock: Clock) -> str:
    """Compact last-activity text for the friend list: 5m, 3h, Mon, 23 Nov, 2024."""
    when = to_local(date_sent, clock)
    if when is None:
        return ""
    now = clock()
    seconds = (now - when).total_seconds()
    if seconds < 60:
        return "now"
    if seconds < 3600:
        return f"{int(seconds // 60)}m"
    if when.date() == now.date():
        return f"{int(seconds // 3600)}h"
    if seconds < 6 * 86400:
        return when.format("ddd")
    if when.year == now.year:
        return when.format("D MMM")
    return when.format("YYYY")
