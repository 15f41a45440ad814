"""Typed models of the wire format, parsed once at the edge of the client.

Everything above :mod:`tui.client.http` (the sync core, the screens, the widgets)
handles these frozen dataclasses, never the JSON dicts they come from. A parse
tolerates the older shapes the server may send (seed files keep ``date_sent`` as
text; old servers omit ``client_id`` or ``has_more``) and refuses what it cannot
read with :class:`BadReply`, so a broken reply is one clear error, not a
``KeyError`` somewhere in a widget.

See docs/api.md for the meaning of each field.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

DateSent = int | float | str | None
"""Unix seconds (UTC) as the server sets it; files of the original server may hold text."""


class BadReply(ValueError):
    """A reply the client cannot read (missing or mistyped field)."""


def _int(data: Mapping[str, Any], key: str, default: int | None = None) -> int:
    value = data.get(key, default)
    if isinstance(value, bool) or value is None:
        if default is not None and value is None:
            return default
        raise BadReply(f"'{key}' is missing or not a number")
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        raise BadReply(f"'{key}' is not a number") from exc


def _str(data: Mapping[str, Any], key: str, default: str = "") -> str:
    value = data.get(key)
    return default if value is None else str(value)


def _date(value: Any) -> DateSent:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float | str):
        return value
    return str(value)


def _mapping(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise BadReply(f"{what} is not an object")
    return value


def _list(data: Mapping[str, Any], key: str) -> list[Any]:
    value = data.get(key, [])
    if not isinstance(value, list):
        raise BadReply(f"'{key}' is not a list")
    return value


@dataclass(frozen=True)
class Session:
    username: str
    display_name: str = ""
    token: str = ""

    @classmethod
    def parse(cls, data: Mapping[str, Any]) -> Session:
        username = _str(data, "username")
        if not username:
            raise BadReply("'username' is missing")
        return cls(username, _str(data, "display_name"), _str(data, "token"))


@dataclass(frozen=True)
class Message:
    """One stored message of a pair."""

    id: int
    author: str
    text: str
    date_sent: DateSent
    client_id: str | None = None

    @classmethod
    def parse(cls, data: Any) -> Message:
        data = _mapping(data, "a message")
        client_id = data.get("client_id")
        return cls(
            id=_int(data, "id"),
            author=_str(data, "author", "?"),
            text=_str(data, "message"),
            date_sent=_date(data.get("date_sent")),
            client_id=str(client_id) if client_id else None,
        )


@dataclass(frozen=True)
class Page:
    """A page of history, oldest first; ``has_more`` in the direction asked."""

    messages: tuple[Message, ...]
    has_more: bool

    @classmethod
    def parse(cls, data: Mapping[str, Any]) -> Page:
        messages = tuple(Message.parse(m) for m in _list(data, "history"))
        return cls(messages, bool(data.get("has_more", False)))


@dataclass(frozen=True)
class Sent:
    """The server's answer to a send: the stored message's ``id`` and time."""

    id: int
    date_sent: DateSent
    duplicate: bool = False

    @classmethod
    def parse(cls, data: Mapping[str, Any]) -> Sent:
        return cls(_int(data, "id"), _date(data.get("date_sent")), bool(data.get("duplicate")))


@dataclass(frozen=True)
class Friend:
    """A row of ``GET /friends``."""

    username: str
    display_name: str = ""
    unread: int = 0
    last_id: int = 0
    last_activity: DateSent = None

    @classmethod
    def parse(cls, data: Any) -> Friend:
        data = _mapping(data, "a friend")
        last = data.get("last_message")
        last_message = Message.parse(last) if last else None
        return cls(
            username=_str(data, "username"),
            display_name=_str(data, "display_name"),
            unread=_int(data, "unread", 0),
            last_id=last_message.id if last_message else 0,
            last_activity=last_message.date_sent if last_message else None,
        )


@dataclass(frozen=True)
class FriendList:
    friends: tuple[Friend, ...]
    blocked: tuple[str, ...]

    @classmethod
    def parse(cls, data: Mapping[str, Any]) -> FriendList:
        friends = tuple(Friend.parse(f) for f in _list(data, "friends"))
        return cls(friends, tuple(str(b) for b in _list(data, "blocked")))


@dataclass(frozen=True)
class Change:
    """One entry of the change feed: a conversation that changed since the cursor."""

    username: str
    display_name: str = ""
    last_id: int = 0
    unread: int = 0
    last_activity: DateSent = None
    listed: bool = True
    blocked: bool = False

    @classmethod
    def parse(cls, data: Any) -> Change:
        data = _mapping(data, "a change")
        username = _str(data, "username")
        if not username:
            raise BadReply("a change without 'username'")
        return cls(
            username=username,
            display_name=_str(data, "display_name"),
            last_id=_int(data, "last_id", 0),
            unread=_int(data, "unread", 0),
            last_activity=_date(data.get("last_activity")),
            listed=bool(data.get("listed", True)),
            blocked=bool(data.get("blocked", False)),
        )


@dataclass(frozen=True)
class Feed:
    """A reply of ``GET /updates``: the new cursor and what changed."""

    cursor: str
    changes: tuple[Change, ...]

    @classmethod
    def parse(cls, data: Mapping[str, Any]) -> Feed:
        return cls(_str(data, "cursor"), tuple(Change.parse(c) for c in _list(data, "changed")))


@dataclass(frozen=True)
class LinkCode:
    """A one-time code that lets another SSH key join this account."""

    code: str
    expires_in: int

    @classmethod
    def parse(cls, data: Mapping[str, Any]) -> LinkCode:
        code = _str(data, "code")
        if not code:
            raise BadReply("'code' is missing")
        return cls(code, _int(data, "expires_in", 0))


@dataclass(frozen=True)
class SshKey:
    fingerprint: str
    comment: str = ""
    added: DateSent = None

    @classmethod
    def parse(cls, data: Any) -> SshKey:
        data = _mapping(data, "a key")
        return cls(_str(data, "fingerprint"), _str(data, "comment"), _date(data.get("added")))

    @staticmethod
    def parse_list(data: Mapping[str, Any]) -> tuple[SshKey, ...]:
        return tuple(SshKey.parse(k) for k in _list(data, "keys"))


def unread_count(data: Mapping[str, Any]) -> int:
    return _int(data, "unread", 0)


def success(data: Mapping[str, Any]) -> bool:
    return bool(data.get("success", True))


def raw(data: Mapping[str, Any]) -> dict[str, Any]:
    return dict(data)
