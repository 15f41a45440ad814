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
from dataclasses import dataclass, replace
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


def _optional_int(data: Mapping[str, Any], key: str) -> int | None:
    return None if data.get(key) is None else _int(data, key)


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
    rev: int = 0
    """The pair's revision when this message last changed (0: a server without revisions)."""
    edited_at: DateSent = None
    deleted: bool = False
    reply_to: int | None = None

    @classmethod
    def parse(cls, data: Any) -> Message:
        data = _mapping(data, "a message")
        client_id = data.get("client_id")
        reply_to = data.get("reply_to")
        return cls(
            id=_int(data, "id"),
            author=_str(data, "author", "?"),
            text=_str(data, "message"),
            date_sent=_date(data.get("date_sent")),
            client_id=str(client_id) if client_id else None,
            rev=_int(data, "rev", 0),
            edited_at=_date(data.get("edited_at")),
            deleted=bool(data.get("deleted", False)),
            reply_to=_int(data, "reply_to") if reply_to is not None else None,
        )


@dataclass(frozen=True)
class Page:
    """A page of history, oldest first; ``has_more`` in the direction asked."""

    messages: tuple[Message, ...]
    has_more: bool
    rev: int = 0
    """The pair's current revision (0: a server without revisions)."""
    has_more_after: bool = False
    """With ``around_id``: newer messages exist after the page."""

    @classmethod
    def parse(cls, data: Mapping[str, Any]) -> Page:
        messages = tuple(Message.parse(m) for m in _list(data, "history"))
        return cls(
            messages,
            bool(data.get("has_more", False)),
            _int(data, "rev", 0),
            bool(data.get("has_more_after", False)),
        )


@dataclass(frozen=True)
class SearchResults:
    """Matches of a whole-history search, newest first."""

    results: tuple[Message, ...]
    has_more: bool

    @classmethod
    def parse(cls, data: Mapping[str, Any]) -> SearchResults:
        results = tuple(Message.parse(m) for m in _list(data, "results"))
        return cls(results, bool(data.get("has_more", False)))


def changed_message(data: Mapping[str, Any]) -> Message:
    """The reply of an edit or delete: the message as it is now."""
    return Message.parse(data.get("message"))


@dataclass(frozen=True)
class Sent:
    """The server's answer to a send: the stored message's ``id`` and time."""

    id: int
    date_sent: DateSent
    duplicate: bool = False
    rev: int = 0

    @classmethod
    def parse(cls, data: Mapping[str, Any]) -> Sent:
        return cls(
            _int(data, "id"),
            _date(data.get("date_sent")),
            bool(data.get("duplicate")),
            _int(data, "rev", 0),
        )


@dataclass(frozen=True)
class Friend:
    """A row of ``GET /friends``."""

    username: str
    display_name: str = ""
    unread: int = 0
    last_id: int = 0
    last_activity: DateSent = None
    peer_read_up_to: int | None = None
    """The highest id of mine they have read; None when they turned receipts off."""
    rev: int = 0
    """The pair's revision (edits and deletes move it, not only new messages)."""
    request: bool = False
    """A conversation started by someone who is not my friend (not in the main list)."""
    typing: bool = False

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
            peer_read_up_to=_optional_int(data, "peer_read_up_to"),
            rev=_int(data, "rev", last_message.rev if last_message else 0),
        )


@dataclass(frozen=True)
class FriendList:
    friends: tuple[Friend, ...]
    blocked: tuple[str, ...]
    requests: tuple[Friend, ...] = ()

    @classmethod
    def parse(cls, data: Mapping[str, Any]) -> FriendList:
        friends = tuple(Friend.parse(f) for f in _list(data, "friends"))
        requests = tuple(Friend.parse(f) for f in _list(data, "requests"))
        blocked = tuple(str(b) for b in _list(data, "blocked"))
        return cls(friends, blocked, tuple(replace(f, request=True) for f in requests))


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
    rev: int = 0
    peer_read_up_to: int | None = None
    typing: bool = False
    request: bool = False

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
            rev=_int(data, "rev", 0),
            peer_read_up_to=_optional_int(data, "peer_read_up_to"),
            typing=bool(data.get("typing", False)),
            request=bool(data.get("request", False)),
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


def revoked_count(data: Mapping[str, Any]) -> int:
    return _int(data, "revoked", 0)


def settings_of(data: Mapping[str, Any]) -> dict[str, Any]:
    settings = data.get("settings", {})
    return dict(settings) if isinstance(settings, Mapping) else {}


def unread_count(data: Mapping[str, Any]) -> int:
    return _int(data, "unread", 0)


def success(data: Mapping[str, Any]) -> bool:
    return bool(data.get("success", True))


def raw(data: Mapping[str, Any]) -> dict[str, Any]:
    return dict(data)
