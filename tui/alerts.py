"""Terminal alerts beyond the bell: desktop notifications by escape sequence (no Textual).

``OSC 9`` (iTerm2, Windows Terminal, WezTerm, …) and ``OSC 777;notify`` (foot,
rxvt-unicode, Ghostty, …) ask the terminal for a desktop notification. Inside
tmux they must be wrapped in a DCS passthrough (``ESC P tmux; … ESC \\``, every ESC
inside doubled), which tmux forwards when ``allow-passthrough`` is on. Text is
made safe first: no control characters can end the sequence early.
"""

from __future__ import annotations

import re

KINDS = ("off", "osc9", "osc777")
BELL_POLICIES = ("off", "other", "all")
"""``off``: never; ``other``: a message in a chat that is not on screen; ``all``: also the
open chat when its new message is not seen (scrolled up, terminal unfocused)."""

_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f;]")


def _clean(text: str) -> str:
    return _UNSAFE.sub(" ", text)[:200]


def desktop_notification(kind: str, title: str, body: str, in_tmux: bool = False) -> str:
    """The escape sequence asking for a notification, or "" when ``kind`` is off."""
    if kind == "osc9":
        sequence = f"\x1b]9;{_clean(title)}: {_clean(body)}\x07"
    elif kind == "osc777":
        sequence = f"\x1b]777;notify;{_clean(title)};{_clean(body)}\x07"
    else:
        return ""
    if in_tmux:
        return "\x1bPtmux;" + sequence.replace("\x1b", "\x1b\x1b") + "\x1b\\"
    return sequence
