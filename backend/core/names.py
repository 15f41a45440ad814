"""When two display names read alike: the Unicode confusable skeleton (UTS #39).

``skeleton`` is ICU's (``SpoofChecker.getSkeleton``, current Unicode data):
Cyrillic a (U+0430), IPA alpha (U+0251) and Latin ``a`` share one, as do ``rn``
and ``m``. ``name_key`` is what a name is compared by: NFKC, case-folded, spaces
collapsed, then its skeleton (folded again, so Cherokee A (U+13AA), whose skeleton
is ``A``, meets ``a``). Two names with the same key read the same; the accounts
file keeps each display name's key (``display_key`` in ``usernames``).

``invisible`` finds what a name may not hold at all: characters that show nothing
or only blank space (format and bidi controls, zero-width and default-ignorable
characters, the Hangul fillers, the blank Braille pattern, every space but the
plain one) — a name made of them, or padded with them, looks like another one.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator
from functools import lru_cache

import icu

# Blank but not default-ignorable (so not caught by category alone): shown as a gap.
_BLANK = frozenset("\u115f\u1160\u3164\uffa0\u2800\u180e")
# Unicode's Default_Ignorable_Code_Point ranges (DerivedCoreProperties): shown as nothing.
_IGNORABLE = (
    (0x00AD, 0x00AD),
    (0x034F, 0x034F),
    (0x061C, 0x061C),
    (0x115F, 0x1160),
    (0x17B4, 0x17B5),
    (0x180B, 0x180F),
    (0x200B, 0x200F),
    (0x202A, 0x202E),
    (0x2060, 0x206F),
    (0x3164, 0x3164),
    (0xFE00, 0xFE0F),
    (0xFEFF, 0xFEFF),
    (0xFFA0, 0xFFA0),
    (0xFFF0, 0xFFF8),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0000, 0xE0FFF),
)


_EMOJI_PRESENTATION = frozenset("\ufe0e\ufe0f")
"""Variation selectors 15/16: text or emoji style of the symbol before them (❤️)."""


def _part_of_an_emoji(name: str, index: int) -> bool:
    """A variation selector right after a symbol: drawn as part of the emoji, never as
    blank space of its own (people put ❤️ in their names). Joined emoji (U+200D) are
    refused by the printable-only rule before this runs."""
    return (
        name[index] in _EMOJI_PRESENTATION
        and index > 0
        and (unicodedata.category(name[index - 1]) == "So")
    )


def invisible(name: str) -> Iterator[str]:
    """Each character of ``name`` that shows nothing or only blank space (not ``' '``)."""
    for index, char in enumerate(name):
        point = ord(char)
        category = unicodedata.category(char)
        if _part_of_an_emoji(name, index):
            continue
        if (
            char in _BLANK
            or category in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp")
            or (category == "Zs" and char != " ")
            or any(low <= point <= high for low, high in _IGNORABLE)
        ):
            yield char


@lru_cache(maxsize=1)
def _checker() -> icu.SpoofChecker:
    return icu.SpoofChecker()


def _fold(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def skeleton(text: str) -> str:
    """The UTS #39 skeleton of ``text`` (ICU's; case is kept)."""
    return str(_checker().getSkeleton(0, text))


def name_key(name: str) -> str:
    """What ``name`` reads as: folded, skeleton, folded again until it stays (at most 3)."""
    key = _fold(name)
    for _ in range(3):
        nxt = _fold(skeleton(key))
        if nxt == key:
            break
        key = nxt
    return key


USERNAME_SKELETON = (("m", "rn"), ("0", "o"), ("1", "l"))
"""Where a username's ``name_key`` differs from the username: the only ASCII letters
and digits the skeleton maps (tests/test_names.py checks them all). The accounts
store compares usernames by it in SQL: a new username may not read like another's."""

# A username's key differs from the username only where the skeleton maps these.
_USERNAME_READINGS = {"o": ("o", "0"), "l": ("l", "1")}


def usernames_reading_as(key: str, limit: int = 64) -> list[str] | None:
    """Every username whose ``name_key`` is ``key`` (``rn`` may be ``m``, ``o`` ``0``,
    ``l`` ``1``); ``None`` when there are more than ``limit`` (a key that reads as too
    many names to look up, which a caller refuses)."""
    found: list[str] = []

    def walk(rest: str, made: str) -> bool:
        if len(found) > limit:
            return False
        if not rest:
            found.append(made)
            return True
        if rest.startswith("rn"):
            walk(rest[2:], made + "m")
        for reading in _USERNAME_READINGS.get(rest[0], (rest[0],)):
            walk(rest[1:], made + reading)
        return len(found) <= limit

    if not key or len(key) > 78 or not all(c.isascii() and (c.isalnum() or c == "-") for c in key):
        return []
    walk(key, "")
    if len(found) > limit:
        return None
    return [name for name in found if len(name) <= 39 and name_key(name) == key]
