"""Username rules and the pair -> file-name mapping (docs/design.md, "Usernames").

A username is 1-39 ASCII letters, digits and single inner hyphens, compared
case-insensitively; its canonical form is lowercase. Because a canonical name
can contain neither ``_`` nor ``.`` nor a path separator, ``<a>_<b>.db`` with
``a < b`` is one-to-one and always a plain file name inside the data folder.

``Username`` and ``Pair`` are the typed values the HTTP edge hands the services:
holding one means the rules above were checked.
"""

from __future__ import annotations

import re
from typing import NamedTuple, NewType

from backend.core.errors import InvalidUsername, MissingField, SameUser
from backend.core.names import name_key

Username = NewType("Username", str)

MAX_USERNAME_LENGTH = 39
USERNAME_RULE = (
    "a username is 1-39 ASCII letters, digits and single hyphens "
    "(no leading or trailing hyphen, no '_', '.' or '/')"
)
_USERNAME_RE = re.compile(r"[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*\Z")


def canonical_username(raw: object, field: str = "username") -> Username:
    """The canonical (lowercase) form of ``raw``; ``MissingField``/``InvalidUsername`` if none."""
    if not isinstance(raw, str) or raw == "":
        raise MissingField(f"'{field}' is required: {USERNAME_RULE}")
    if len(raw) > MAX_USERNAME_LENGTH or not _USERNAME_RE.match(raw):
        raise InvalidUsername(f"'{field}' is not a valid username: {USERNAME_RULE}")
    return Username(raw.lower())


class Pair(NamedTuple):
    """Two different users, sorted (``low < high``): one conversation, one file."""

    low: Username
    high: Username

    @staticmethod
    def of(one: Username, two: Username) -> Pair:
        if one == two:
            raise SameUser("a conversation needs two different users")
        return Pair(one, two) if one < two else Pair(two, one)

    def other(self, name: Username) -> Username:
        """The member of the pair who is not ``name``."""
        return self.high if name == self.low else self.low

    @property
    def file_name(self) -> str:
        return pair_file_name(self.low, self.high)


def canonical_pair(
    one: object, two: object, fields: tuple[str, str] = ("user_one", "user_two")
) -> Pair:
    """Both usernames canonical and sorted; a user cannot pair with themself."""
    return Pair.of(canonical_username(one, fields[0]), canonical_username(two, fields[1]))


def pair_file_name(a: str, b: str) -> str:
    """File name of the canonical, sorted pair ``(a, b)``: ``<a>_<b>.db``."""
    return f"{a}_{b}.db"


def display_key(display_name: str) -> str:
    """What a display name reads as (``names.name_key``): NFKC, case-folded, spaces
    collapsed, then its Unicode confusable skeleton (UTS #39).

    Two names with the same key read the same (``Bob`` and ``BOB`` in full-width
    letters, ``bob  smith`` and ``Bob Smith``, Latin ``alice`` and ``alice`` with a
    Cyrillic a, U+0430); a display name whose key is another user's display name or
    username is refused (docs/design.md, "Auth").
    """
    return name_key(display_name)
