"""Every reply body, built here and nowhere else (the wire shapes of docs/api.md).

Storage and the services return plain data (``Message``, ``Page``, ``Stored``,
``Contact``, ``Friends``, ``Feed``, ``User``); views hand it to one function
here. The seed routes keep the seed's exact keys and only ever gain new ones.
No Flask: the CLI's ``export`` prints messages in the same shape.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from backend.chat import Feed, Friend, Friends, listed
from backend.http.encoding import encode
from backend.ssh_identity import DoorSession
from backend.storage.accounts import Contact, Privacy, User
from backend.storage.conversation import Message, Page, Stored
from backend.storage.door_keys import KeyRecord

JSON = dict[str, Any]


def success(**extra: Any) -> JSON:
    return {"success": True, **extra}


def error(code: str, message: str) -> JSON:
    return {"success": False, "error": code, "message": message}


def health() -> JSON:
    return success(status="ok")


# -- accounts --------------------------------------------------------------------
def account(user: User, token: str | None = None) -> JSON:
    """``/me`` (no token), ``/register`` and ``/login`` (a new token)."""
    body = success(username=user.username, display_name=user.display_name)
    if token is not None:
        body["token"] = token
    return body


def door_session(found: DoorSession) -> JSON:
    """``/door/session``: a known key's account and fresh token, or a ticket."""
    if found.user is None:
        return {"known": False, "ticket": found.ticket}
    return {
        "known": True,
        "username": found.user.username,
        "display_name": found.user.display_name,
        "token": found.token,
    }


def keys(found: list[KeyRecord]) -> JSON:
    return {
        "keys": [
            {
                "fingerprint": key.fingerprint,
                "type": key.key.split(" ", 1)[0],
                "comment": key.comment,
                "added": key.added,
            }
            for key in found
        ]
    }


# -- conversations ---------------------------------------------------------------
def message(item: Message) -> JSON:
    """A message object: the seed's keys, ``id``, ``client_id`` when given, and the
    conversation features' ``rev``, ``edited_at``, ``deleted``, ``reply_to``."""
    body: JSON = {
        "id": item.id,
        "author": item.author,
        "message": item.message,
        "date_sent": item.date_sent,
        "rev": item.rev,
        "edited_at": item.edited_at,
        "deleted": item.deleted,
        "reply_to": item.reply_to,
    }
    if item.client_id is not None:
        body["client_id"] = item.client_id
    return body


def history(page: Page) -> JSON:
    body = {
        "history": [message(item) for item in page.messages],
        "has_more": page.has_more,
        "rev": page.rev,
    }
    if page.has_more_after is not None:
        body["has_more_after"] = page.has_more_after
    return body


def history_stream(pages: Iterable[list[Message]], rev: int) -> Iterator[bytes]:
    """``history`` of a whole conversation as JSON text, one page at a time.

    The same document ``history`` gives (``has_more`` is false: it is all there),
    encoded as Flask encodes a reply (one encoding per page), so memory stays flat
    however long it is.
    """
    yield b'{"history":['
    first = True
    for page in pages:
        if not page:
            continue
        items = encode([message(item) for item in page])[1:-1]  # the list, unbracketed
        yield items if first else b"," + items
        first = False
    yield b'],"has_more":false,"rev":%d}\n' % rev


def changed(item: Message) -> JSON:
    """An edit's or a deletion's reply: the message as it is now."""
    return success(message=message(item))


def search(page: Page) -> JSON:
    return {"results": [message(item) for item in page.messages], "has_more": page.has_more}


def sent(stored: Stored) -> JSON:
    return success(
        id=stored.id, date_sent=stored.date_sent, duplicate=stored.duplicate, rev=stored.rev
    )


# -- friends and the feed --------------------------------------------------------
def friend(item: Friend) -> JSON:
    username, display_name, unread, last, deleted, _, rev, peer_read, typing, request = item
    body = {
        "username": username,
        "display_name": display_name,
        "unread": unread,
        "last_message": None if last is None else message(last),
        "deleted": deleted,
        "rev": rev,
        "typing": typing,
        "request": request,
    }
    if peer_read is not None:
        body["peer_read_up_to"] = peer_read
    return body


def friends(found: Friends) -> JSON:
    return {
        "friends": [friend(item) for item in found.listed],
        "blocked": found.blocked,
        "requests": [friend(item) for item in found.requests],
    }


def change(contact: Contact) -> JSON:
    body = {
        "username": contact.peer,
        "display_name": contact.display_name,
        "last_id": contact.last_id,
        "unread": contact.unread,
        "last_activity": contact.last_activity,
        "listed": listed(contact),
        "blocked": contact.blocked,
        "deleted": contact.deleted,
        "rev": contact.rev,
        "typing": contact.typing,
        "request": contact.request,
    }
    if contact.peer_read_up_to is not None:
        body["peer_read_up_to"] = contact.peer_read_up_to
    return body


def settings(privacy: Privacy) -> JSON:
    return success(settings={"read_receipts": privacy.read_receipts, "typing": privacy.typing})


def feed(found: Feed) -> JSON:
    return {"cursor": str(found.cursor), "changed": [change(c) for c in found.changed]}
