"""Typed models of the wire format, decoded once at the edge of the client.

Everything above :mod:`tui.client.http` (the sync core, the screens, the widgets)
handles these frozen dataclasses, never JSON. The wire shapes themselves are
``protocol.models`` (the schema the server encodes with): a reply is decoded into
them, strictly by type, and then put into the client's own view of it (``Message.text``,
a friend's ``last_id``). What the schema lets an older server leave out (seed files
keep ``date_sent`` as text; old servers omit ``client_id``, ``rev`` or ``has_more``)
reads as its default; a reply that does not fit raises :class:`BadReply`, so a broken
reply is one clear error, not a ``KeyError`` somewhere in a widget.

A message's ``attachment`` (a file sent with ``POST /send_file``) is read from the
wire message when the schema has it; an older server's message has none (``None``).

See docs/api.md for the meaning of each field.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, TypeVar

from protocol import DecodeError, decode, to_builtins
from protocol import models as wire

DateSent = int | float | str | None
"""Unix seconds (UTC) as the server sets it; files of the original server may hold text."""

W = TypeVar("W")


class BadReply(ValueError):
    """A reply the client cannot read (missing or mistyped field)."""


def _decode(data: bytes, kind: type[W]) -> W:
    try:
        return decode(data, kind)
    except DecodeError as exc:
        raise BadReply(str(exc)) from None


def _maybe(value: Any) -> Any:
    """A field the server may leave out: ``None`` when it did."""
    return None if value is wire.UNSET else value


@dataclass(frozen=True)
class Session:
    username: str
    display_name: str = ""
    token: str = ""

    @classmethod
    def parse(cls, data: bytes) -> Session:
        found = _decode(data, wire.Account)
        if not found.username:
            raise BadReply("'username' is missing")
        return cls(found.username, found.display_name or "", _maybe(found.token) or "")


OCTET_STREAM = "application/octet-stream"
"""The media type of a file whose type nobody knows."""


@dataclass(frozen=True)
class Attachment:
    """The file a message carries: its name, size in bytes and media type."""

    name: str
    size: int
    type: str = OCTET_STREAM

    def as_json(self) -> dict[str, Any]:
        """The wire object, as the server sent it (``pairchat history --json``)."""
        return {"name": self.name, "size": self.size, "type": self.type}


def attachment_of(value: Any) -> Attachment | None:
    """An ``attachment`` as the wire schema gives it (a struct or a plain object), or None.

    Raises :class:`BadReply` for one that is there but does not fit."""
    if value is None or value is wire.UNSET:
        return None
    if isinstance(value, dict):
        name, size, kind = value.get("name"), value.get("size"), value.get("type")
    else:
        name = getattr(value, "name", None)
        size = getattr(value, "size", None)
        kind = getattr(value, "type", None)
    if not isinstance(name, str) or not isinstance(size, int) or isinstance(size, bool):
        raise BadReply("an 'attachment' needs a text 'name' and an integer 'size'")
    if size < 0:
        raise BadReply("an 'attachment' 'size' is negative")
    return Attachment(name, size, kind if isinstance(kind, str) and kind else OCTET_STREAM)


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
    reactions: tuple[tuple[str, tuple[str, ...]], ...] = ()
    """Each emoji and who reacted with it (usernames, sorted), in the server's order."""
    attachment: Attachment | None = None
    """The file sent with it (``GET /file/<id>`` has the bytes); None: text only."""

    @classmethod
    def of(cls, found: wire.Message) -> Message:
        return cls(
            id=found.id,
            author=found.author,
            text=found.message,
            date_sent=found.date_sent,
            client_id=_maybe(found.client_id) or None,
            rev=found.rev,
            edited_at=found.edited_at,
            deleted=found.deleted,
            reply_to=found.reply_to,
            reactions=tuple((emoji, tuple(names)) for emoji, names in found.reactions.items()),
            attachment=attachment_of(getattr(found, "attachment", None)),
        )

    @classmethod
    def parse(cls, data: bytes) -> Message:
        return cls.of(_decode(data, wire.Message))


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
    def parse(cls, data: bytes) -> Page:
        found = _decode(data, wire.History)
        return cls(
            tuple(Message.of(m) for m in found.history),
            found.has_more,
            found.rev,
            bool(_maybe(found.has_more_after)),
        )


@dataclass(frozen=True)
class SearchResults:
    """Matches of a whole-history search, newest first."""

    results: tuple[Message, ...]
    has_more: bool

    @classmethod
    def parse(cls, data: bytes) -> SearchResults:
        found = _decode(data, wire.SearchResults)
        return cls(tuple(Message.of(m) for m in found.results), found.has_more)


def changed_message(data: bytes) -> Message:
    """The reply of an edit or delete: the message as it is now."""
    return Message.of(_decode(data, wire.Changed).message)


@dataclass(frozen=True)
class Sent:
    """The server's answer to a send: the stored message's ``id`` and time."""

    id: int
    date_sent: DateSent
    duplicate: bool = False
    rev: int = 0
    attachment: Attachment | None = None
    """The stored file, for a ``/send_file`` reply."""

    @classmethod
    def parse(cls, data: bytes) -> Sent:
        found = _decode(data, wire.Sent)
        attachment = attachment_of(getattr(found, "attachment", None))
        return cls(found.id, found.date_sent, found.duplicate, found.rev, attachment)


@dataclass(frozen=True)
class SharedFile:
    """A row of ``GET /files``: a file of the pair, by the message that carries it."""

    id: int
    author: str
    date_sent: DateSent
    attachment: Attachment

    @staticmethod
    def parse_list(data: bytes) -> tuple[SharedFile, ...]:
        rows = _decode(data, dict[str, Any]).get("files")
        if not isinstance(rows, list):
            raise BadReply("'files' is missing or not a list")
        files = []
        for row in rows:
            if not isinstance(row, dict):
                raise BadReply("a file entry is not an object")
            message_id, author = row.get("id"), row.get("author")
            if not isinstance(message_id, int) or not isinstance(author, str):
                raise BadReply("a file entry needs an integer 'id' and a text 'author'")
            attachment = attachment_of(row)
            assert attachment is not None
            files.append(SharedFile(message_id, author, row.get("date_sent"), attachment))
        return tuple(files)


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
    def of(cls, found: wire.Friend) -> Friend:
        last = found.last_message
        return cls(
            username=found.username,
            display_name=found.display_name or "",
            unread=found.unread,
            last_id=last.id if last else 0,
            last_activity=last.date_sent if last else None,
            peer_read_up_to=_maybe(found.peer_read_up_to),
            rev=found.rev or (last.rev if last else 0),
        )


@dataclass(frozen=True)
class FriendList:
    friends: tuple[Friend, ...]
    blocked: tuple[str, ...]
    requests: tuple[Friend, ...] = ()

    @classmethod
    def parse(cls, data: bytes) -> FriendList:
        found = _decode(data, wire.Friends)
        return cls(
            tuple(Friend.of(f) for f in found.friends),
            tuple(found.blocked),
            tuple(replace(Friend.of(f), request=True) for f in found.requests),
        )


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
    def of(cls, found: wire.Change) -> Change:
        if not found.username:
            raise BadReply("a change without 'username'")
        return cls(
            username=found.username,
            display_name=found.display_name or "",
            last_id=found.last_id,
            unread=found.unread,
            last_activity=found.last_activity,
            listed=found.listed,
            blocked=found.blocked,
            rev=found.rev,
            peer_read_up_to=_maybe(found.peer_read_up_to),
            typing=found.typing,
            request=found.request,
        )


@dataclass(frozen=True)
class Feed:
    """A reply of ``GET /updates`` (or a ``feed`` event of ``GET /events``): the new
    cursor and what changed."""

    cursor: str
    changes: tuple[Change, ...]
    retry_after: float | None = None
    """Seconds to wait before the next long-poll, when the reply said so (``Retry-After``:
    a full server answers a long-poll at once and asks for a pause)."""

    @classmethod
    def parse(cls, data: bytes) -> Feed:
        found = _decode(data, wire.Feed)
        return cls(found.cursor, tuple(Change.of(c) for c in found.changed))


@dataclass(frozen=True)
class LinkCode:
    """A one-time code that lets another SSH key join this account."""

    code: str
    expires_in: int

    @classmethod
    def parse(cls, data: bytes) -> LinkCode:
        found = _decode(data, wire.LinkCode)
        return cls(found.code, found.expires_in)


@dataclass(frozen=True)
class SshKey:
    fingerprint: str
    comment: str = ""
    added: DateSent = None

    @staticmethod
    def parse_list(data: bytes) -> tuple[SshKey, ...]:
        found = _decode(data, wire.Keys)
        return tuple(SshKey(k.fingerprint, k.comment, k.added) for k in found.keys)


@dataclass(frozen=True)
class ScriptToken:
    """One of my script tokens (``GET /tokens``): never its secret."""

    id: str
    name: str
    scopes: tuple[str, ...]
    expires_at: int | None = None

    @staticmethod
    def parse_list(data: bytes) -> tuple[ScriptToken, ...]:
        found = _decode(data, wire.Tokens)
        return tuple(ScriptToken(t.id, t.name, tuple(t.scopes), t.expires_at) for t in found.tokens)


def revoked_count(data: bytes) -> int:
    return _decode(data, wire.Revoked).revoked


def settings_of(data: bytes) -> dict[str, Any]:
    settings: dict[str, Any] = to_builtins(_decode(data, wire.Settings).settings)
    return settings


def unread_count(data: bytes) -> int:
    return _decode(data, wire.Unread).unread


def success(data: bytes) -> bool:
    return _decode(data, wire.Success).success


def raw(data: bytes) -> dict[str, Any]:
    return _decode(data, dict[str, Any])
