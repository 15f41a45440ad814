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
from backend.storage.accounts import Contact, User
from backend.storage.conversation import Message, Page, Stored

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


# -- conversations ---------------------------------------------------------------
def message(item: Message) -> JSON:
    body: JSON = {
        "id": item.id,
        "author": item.author,
        "message": item.message,
        "date_sent": item.date_sent,
    }
    if item.client_id is not None:
        body["client_id"] = item.client_id
    return body


def history(page: Page) -> JSON:
    return {"history": [message(item) for item in page.messages], "has_more": page.has_more}


def history_stream(pages: Iterable[list[Message]]) -> Iterator[bytes]:
    """``history`` of a whole conversation as JSON text, one page at a time.

    The same document ``history`` gives (``has_more`` is false: it is all there),
    encoded as Flask encodes a reply, so memory stays flat however long it is.
    """
    yield b'{"history":['
    first = True
    for page in pages:
        parts = [_compact(message(item)) for item in page]
        if not parts:
            continue
        yield (("" if first else ",") + ",".join(parts)).encode("utf-8")
        first = False
    yield b'],"has_more":false}\n'


def _compact(value: Any) -> str:
    return encode(value).decode("utf-8")


def sent(stored: Stored) -> JSON:
    return success(id=stored.id, date_sent=stored.date_sent, duplicate=stored.duplicate)


# -- friends and the feed --------------------------------------------------------
def friend(item: Friend) -> JSON:
    username, display_name, unread, last, deleted, _ = item
    return {
        "username": username,
        "display_name": display_name,
        "unread": unread,
        "last_message": None if last is None else message(last),
        "deleted": deleted,
    }


def friends(found: Friends) -> JSON:
    return {"friends": [friend(item) for item in found.listed], "blocked": found.blocked}


def change(contact: Contact) -> JSON:
    return {
        "username": contact.peer,
        "display_name": contact.display_name,
        "last_id": contact.last_id,
        "unread": contact.unread,
        "last_activity": contact.last_activity,
        "listed": listed(contact),
        "blocked": contact.blocked,
        "deleted": contact.deleted,
    }


def feed(found: Feed) -> JSON:
    return {"cursor": str(found.cursor), "changed": [change(c) for c in found.changed]}
