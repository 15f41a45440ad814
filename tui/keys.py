"""Terminal bytes to keys: Textual's own parser, plus the Alt chords it drops or mistypes.

A terminal sends Alt+key as ESC followed by the key. Textual 8's parser reads
ESC CR as a plain Enter (so Alt+Enter sent the message), and ESC 1 … ESC 0 as
the characters a Mac's Option key types (``¡™£¢∞§¶•ªº``: Alt+1 typed "¡"); any
other Alt+letter arrives as a key *with* its character, which a text box inserts.
Here ESC and a digit is Alt+digit (open chat N) with no character, and Alt+Enter is
``alt+enter`` in every encoding (ESC CR, ESC LF, CSI u / kitty, which Textual already
reads, and xterm's ``modifyOtherKeys`` form ``CSI 27 ; 3 ; 13 ~``, which Textual reads
as a key named "\\r").

ESC and a letter, a space or a punctuation mark is two keys, Escape and that key: the
same bytes are what a fast burst (or a slow link that delivers two key presses in one
read) makes of Esc then a letter, and pairchat binds no Alt+letter, so reading them as
one Alt chord lost both keys (a burst ``F1 Esc after help`` left Help open and the
words gone). Textual's own meanings stay: ESC Tab, ESC DEL (Alt+Backspace), ESC b and
ESC f (word moves), ESC ESC.

The parser is the driver's (Linux terminal, and the web driver of the browser
door): :func:`install` points both at :class:`TerminalKeys` before the app
starts. It overrides one method of Textual's parser, so Textual is pinned
exactly in pyproject.toml and tests/tui/test_keys.py feeds it real byte strings.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from textual import events
from textual._xterm_parser import XTermParser
from textual.keys import _character_to_key

ESC = "\x1b"
_NAMED = {"\r": "enter", "\n": "enter", "\t": "tab", "\x7f": "backspace", "\x08": "backspace"}
"""Keys whose ESC-prefixed form Textual maps to a plain key (or to something else)."""
_TEXTUAL_MEANINGS = {"\x7f", "\t", "b", "f", ESC}
"""ESC + these keep Textual's meaning: Alt+Backspace deletes a word, ESC Tab is Shift+Tab
on some terminals, ESC b / ESC f move by word (macOS), ESC ESC is Escape."""
_PREFIXES = {"[", "O"}
"""ESC [ and ESC O start longer sequences (arrows, F-keys): never an Alt chord here."""

_MODIFY_OTHER_KEYS = re.compile(r"\x1b\[27;(\d+);(\d+)~")
"""xterm's modifyOtherKeys: ``CSI 27 ; 1 + modifier bits ; code point ~`` (shift 1, alt 2)."""


def alt_key(character: str) -> events.Key | None:
    """The Alt chord for ``character`` typed after ESC, or None to leave it to Textual."""
    if len(character) != 1 or character in _TEXTUAL_MEANINGS or character in _PREFIXES:
        return None
    if character in _NAMED:
        return events.Key(f"alt+{_NAMED[character]}", None)
    if not character.isprintable():
        return None
    name = character if character.isalnum() else _character_to_key(character)
    if len(name) == 1 and name.isupper():
        name = f"shift+{name.lower()}"
    return events.Key(f"alt+{name}", None)


def _modified_key(bits: int, character: str) -> events.Key | None:
    """Shift and/or Alt with ``character`` (xterm's modifyOtherKeys); None: Textual's reading."""
    if bits == 1 and character in "\r\n":
        return events.Key("shift+enter", None)
    if bits & ~1 != 2:  # not Alt, or Alt with Ctrl/Super: left to Textual
        return None
    if bits & 1 and character.isalpha():
        character = character.upper()
    return alt_key(character)


def escape_then(character: str) -> bool:
    """ESC followed by ``character`` is Escape and then that key (not an Alt chord)."""
    return (
        len(character) == 1
        and character.isprintable()
        and not character.isdigit()
        and character not in _TEXTUAL_MEANINGS
        and character not in _PREFIXES
    )


class TerminalKeys(XTermParser):
    """Textual's terminal parser; ESC + a digit or Enter is an Alt chord without a
    character, ESC + a letter is Escape and the letter."""

    def _sequence_to_key_events(self, sequence: str, alt: bool = False) -> Iterable[events.Key]:
        pressed = sequence[1:] if len(sequence) == 2 and sequence[0] == ESC else sequence
        if (alt or pressed is not sequence) and escape_then(pressed):
            yield events.Key("escape", ESC)
            yield from super()._sequence_to_key_events(pressed, False)
            return
        if len(sequence) == 2 and sequence[0] == ESC:
            key = alt_key(sequence[1])  # ESC and the key arrived together
        elif alt:
            key = alt_key(sequence)  # ESC, then the key before Textual's escape delay ran out
        elif match := _MODIFY_OTHER_KEYS.fullmatch(sequence):
            key = _modified_key(int(match[1]) - 1, chr(int(match[2])))
        else:
            key = None
        if key is not None:
            yield key
            return
        yield from super()._sequence_to_key_events(sequence, alt)


def install() -> None:
    """Make the terminal and web drivers parse with :class:`TerminalKeys`."""
    from textual.drivers import linux_driver, web_driver

    linux_driver.XTermParser = TerminalKeys  # type: ignore[misc]
    web_driver.XTermParser = TerminalKeys  # type: ignore[misc]
