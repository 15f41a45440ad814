"""Username rules and the pair -> file-name mapping of DESIGN.md.

A username is 1-39 ASCII letters, digits and single inner hyphens, compared
case-insensitively; its canonical form is lowercase. Because a canonical name
can contain neither ``_`` nor ``.`` nor a path separator, ``<a>_<b>.db`` with
``a < b`` is one-to-one and always a plain file name inside the data folder.
"""

from __future__ import annotations

import re

from backend.errors import BadRequest

MAX_USERNAME_LENGTH = 39
USERNAME_RULE = (
    "a username is 1-39 ASCII letters, digits and single hyphens "
    "(no leading or trailing hyphen, no '_', '.' or '/')"
)
_USERNAME_RE = re.compile(r"[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*\Z")


def canonical_username(raw: object, field: str = "username") -> str:
    """Return the canonical (lowercase) form of ``raw`` or raise ``BadRequest``."""
    if not isinstance(raw, str) or raw == "":
        raise BadRequest("missing_field", f"'{field}' is required: {USERNAME_RULE}")
    if len(raw) > MAX_USERNAME_LENGTH or not _USERNAME_RE.match(raw):
        raise BadRequest("invalid_username", f"'{field}' is not a valid username: {USERNAME_RULE}")
    return raw.lower()


def canonical_pair(
    one: object, two: object, fields: tuple[str, str] = ("user_one", "user_two")
) -> tuple[str, str]:
    """Both usernames canonical and sorted; a user cannot pair with themself."""
    a = canonical_username(one, fields[0])
    b = canonical_username(two, fields[1])
    if a == b:
        raise BadRequest("same_user", "a conversation needs two different users")
    return (a, b) if a < b else (b, a)


def pair_file_name(a: str, b: str) -> str:
    """File name of the canonical, sorted pair ``(a, b)``: ``<a>_<b>.db``."""
    return f"{a}_{b}.db"
