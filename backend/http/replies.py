"""Every reply body: the plain data of storage and the services put into the wire models.

The shapes themselves are ``protocol.models`` (the one schema: the TUI's client decodes
with it and docs/openapi.yaml is generated from it); this module only fills them in
from ``Message``, ``Page``, ``Stored``, ``Contact``, ``Friends``, ``Feed``, ``User`` and
answers a view with the encoded bytes. The seed routes keep the seed's exact keys and
only ever gain new ones. ``error`` and ``message`` give plain dicts, for the error
handlers, the ASGI front and the CLI's ``export``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import quote

from flask import Response

from backend.services.accounts import NewScriptToken
from backend.services.chat import Feed, Friend, Friends, listed
from backend.services.ssh_identity import DoorSession
from backend.storage.accounts import Contact, Privacy, ScriptToken, User
from backend.storage.attachments import Attachment, FileEntry
from backend.storage.conversation import Message, Page, Stored
from backend.storage.door_keys import KeyRecord
from protocol import encode, encode_list_items, to_builtins
from protocol import models as wire

JSON = dict[str, Any]
UNSET: Any = wire.UNSET


def reply(model: wire.Model, status: int = 200) -> Response:
    """``model`` as a JSON reply (compact UTF-8 and a newline, as Flask's own replies)."""
    return Response(encode(model) + b"\n", status=status, mimetype="application/json")


def success() -> Response:
    return reply(wire.Success())


def error(code: str, message: str) -> JSON:
    result: JSON = to_builtins(wire.Error(error=code, message=message))
    return result


def health() -> Response:
    return reply(wire.Health(status="ok"))


# -- accounts --------------------------------------------------------------------
def account(user: User, token: str | None = None, status: int = 200) -> Response:
    """``/me`` (no token), ``/register`` and ``/login`` (a new token)."""
    token_or_unset = UNSET if token is None else token
    return reply(
        wire.Account(username=user.username, display_name=user.display_name, token=token_or_unset),
        status,
    )


def revoked(count: int) -> Response:
    return reply(wire.Revoked(revoked=count))


def door_session(found: DoorSession) -> Response:
    """``/door/session``: a known key's account and fresh token, or a ticket."""
    if found.user is None:
        return reply(wire.DoorSession(known=False, ticket=found.ticket or UNSET))
    return reply(
        wire.DoorSession(
            known=True,
            username=found.user.username,
            display_name=found.user.display_name,
            token=found.token or UNSET,
        )
    )


def new_token(made: NewScriptToken) -> Response:
    return reply(
        wire.NewToken(
            token=made.token,
            id=made.token_id,
            name=made.name,
            scopes=list(made.scopes),  # type: ignore[arg-type]
            expires_at=made.expires_at,
        ),
        201,
    )


def tokens(found: list[ScriptToken]) -> Response:
    return reply(
        wire.Tokens(
            [
                wire.ScriptToken(
                    id=item.token_id,
                    name=item.name,
                    scopes=item.scopes.split(","),  # type: ignore[arg-type]
                    created_at=item.created_at,
                    last_used=item.last_used,
                    expires_at=item.expires_at,
                )
                for item in found
            ]
        )
    )


def link_code(code: str, expires_in: int) -> Response:
    return reply(wire.LinkCode(code=code, expires_in=expires_in))


def keys(found: list[KeyRecord]) -> Response:
    return reply(
        wire.Keys(
            [
                wire.SshKey(key.fingerprint, key.key.split(" ", 1)[0], key.comment, key.added)
                for key in found
            ]
        )
    )


# -- conversations ---------------------------------------------------------------
def wire_message(item: Message) -> wire.Message:
    """A message object: the seed's keys, ``id``, ``client_id`` when given, and the
    conversation features' ``rev``, ``edited_at``, ``deleted``, ``reply_to``, ``reactions``."""
    return wire.Message(
        item.id,
        item.author,
        item.message,
        item.date_sent,
        item.rev,
        item.edited_at,
        item.deleted,
        item.reply_to,
        UNSET if item.client_id is None else item.client_id,
        reactions=item.reactions or {},
        attachment=None if item.attachment is None else wire_attachment(item.attachment),
    )


def wire_attachment(found: Attachment) -> wire.Attachment:
    return wire.Attachment(name=found.name, size=found.size, type=found.type)


def message(item: Message) -> JSON:
    """A message object as a plain dict (the CLI's ``export``)."""
    result: JSON = to_builtins(wire_message(item))
    return result


def history(page: Page) -> Response:
    return reply(
        wire.History(
            [wire_message(item) for item in page.messages],
            page.has_more,
            page.rev,
            UNSET if page.has_more_after is None else page.has_more_after,
        )
    )


def history_stream(pages: Iterable[list[Message]], rev: int) -> Iterator[bytes]:
    """``history`` of a whole conversation as JSON text, one page at a time.

    The same document ``history`` gives (``has_more`` is false: it is all there),
    one encoding per page, so memory stays flat however long it is.
    """
    yield b'{"history":['
    first = True
    for page in pages:
        if not page:
            continue
        items = encode_list_items([wire_message(item) for item in page])
        yield items if first else b"," + items
        first = False
    yield b'],"has_more":false,"rev":%d}\n' % rev


def changed(item: Message) -> Response:
    """An edit's or a deletion's reply: the message as it is now."""
    return reply(wire.Changed(message=wire_message(item)))


def search(page: Page) -> Response:
    return reply(wire.SearchResults([wire_message(item) for item in page.messages], page.has_more))


def sent(stored: Stored) -> Response:
    """``/send_message``'s reply; ``/send_file``'s adds the stored file."""
    return reply(
        wire.Sent(
            id=stored.id,
            date_sent=stored.date_sent,
            duplicate=stored.duplicate,
            rev=stored.rev,
            attachment=UNSET if stored.attachment is None else wire_attachment(stored.attachment),
        )
    )


def files(found: list[FileEntry]) -> Response:
    """``/files``: a pair's files, newest first."""
    return reply(
        wire.Files(
            [
                wire.FileItem(
                    entry.id,
                    entry.author,
                    entry.date_sent,
                    entry.attachment.name,
                    entry.attachment.size,
                    entry.attachment.type,
                )
                for entry in found
            ]
        )
    )


def file_download(
    found: Attachment, chunks: Iterator[bytes], byte_range: tuple[int, int] | None = None
) -> Response:
    """``/file/<id>``: the bytes as a download (a stored chunk at a time), with its type,
    length and name (RFC 6266 ``filename*``: any name, safely quoted); with
    ``byte_range`` (first, last): those bytes only, 206 with ``Content-Range``."""
    response = Response(chunks, mimetype=None, direct_passthrough=True)
    response.headers["Content-Type"] = found.type
    response.headers["Accept-Ranges"] = "bytes"
    if byte_range is None:
        response.headers["Content-Length"] = str(found.size)
    else:
        first, last = byte_range
        response.status_code = 206
        response.headers["Content-Range"] = f"bytes {first}-{last}/{found.size}"
        response.headers["Content-Length"] = str(last - first + 1)
    response.headers["Content-Disposition"] = (
        f"attachment; filename*=UTF-8''{quote(found.name, safe='')}"
    )
    return response


# -- friends and the feed --------------------------------------------------------
def friend(item: Friend) -> wire.Friend:
    username, display_name, unread, last, deleted, _, rev, peer_read, typing, request, mine, _ = (
        item  # the last: the feed's own last_complete
    )
    return wire.Friend(
        username,
        display_name,
        unread,
        None if last is None else wire_message(last),
        deleted,
        rev,
        typing,
        request,
        mine,
        UNSET if peer_read is None else peer_read,
    )


def friends(found: Friends) -> Response:
    return reply(
        wire.Friends(
            [friend(item) for item in found.listed],
            found.blocked,
            [friend(item) for item in found.requests],
        )
    )


def unread(count: int) -> Response:
    return reply(wire.Unread(unread=count))


def change(contact: Contact) -> wire.Change:
    return wire.Change(
        contact.peer,
        contact.display_name,
        contact.last_id,
        contact.unread,
        contact.last_activity,
        listed(contact),
        contact.blocked,
        contact.deleted,
        contact.rev,
        contact.typing,
        contact.request,
        contact.read_marker,
        UNSET if contact.peer_read_up_to is None else contact.peer_read_up_to,
    )


def settings(privacy: Privacy) -> Response:
    return reply(
        wire.Settings(
            settings=wire.PrivacySettings(
                read_receipts=privacy.read_receipts, typing=privacy.typing
            )
        )
    )


def feed(found: Feed) -> Response:
    return reply(feed_model(found))


def feed_model(found: Feed) -> wire.Feed:
    """``/updates``'s reply, and the data of each ``/events`` feed event."""
    return wire.Feed(str(found.cursor), [change(c) for c in found.changed])
