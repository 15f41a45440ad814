"""The chat service: conversations, friends and the change feed, with authorization.

Plain Python over the storage layer; the HTTP views parse a request, call one
method here and render the result. ``viewer`` is the authenticated username, or
``None`` in open mode (the seed's unauthenticated behaviour).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import arrow

from backend.accounts import Accounts
from backend.errors import BadRequest, Forbidden, Unavailable
from backend.notify import Notifier, keys_for_message, pair_key, user_key
from backend.storage.accounts import AccountStore, Contact
from backend.storage.conversation import Conversation, Message, Page, Stored
from backend.storage.conversations import ConversationStore
from backend.usernames import canonical_pair, canonical_username

log = logging.getLogger(__name__)
MAX_MESSAGE_LENGTH = 4000
T = TypeVar("T")


@dataclass(frozen=True)
class Feed:
    cursor: str
    changed: list[dict[str, Any]]


class Chat:
    def __init__(
        self,
        conversations: ConversationStore,
        accounts: Accounts,
        notifier: Notifier,
        *,
        open_mode: bool = False,
        max_wait: float = 30.0,
    ) -> None:
        self.conversations = conversations
        self.accounts = accounts
        self.store: AccountStore = accounts.store
        self.notifier = notifier
        self.open_mode = open_mode
        self.max_wait = max_wait

    # -- authorization ---------------------------------------------------------
    def _pair(
        self, viewer: str | None, one: object, two: object, fields: tuple[str, str]
    ) -> tuple[str, str]:
        a, b = canonical_pair(one, two, fields)
        if viewer is None:
            return a, b
        if viewer not in (a, b):
            raise Forbidden("forbidden", "you can only use your own conversations")
        self.accounts.require_exists(b if viewer == a else a)
        return a, b

    # -- the seed's three operations -----------------------------------------------
    def create_conversation(self, viewer: str | None, one: object, two: object) -> None:
        a, b = self._pair(viewer, one, two, ("user_one", "user_two"))
        conversation = self.conversations.get(a, b, create=True)
        assert conversation is not None
        conversation.initialise_table()

    def history(
        self,
        viewer: str | None,
        one: object,
        two: object,
        *,
        after_id: int | None = None,
        before_id: int | None = None,
        limit: int | None = None,
        wait: float = 0.0,
    ) -> Page:
        a, b = self._pair(viewer, one, two, ("user_one", "user_two"))
        if after_id is not None and before_id is not None:
            raise BadRequest("invalid_field", "give 'after_id' or 'before_id', not both")

        def query() -> Page:
            conversation = self.conversations.get(a, b, create=False)
            if conversation is None:
                return Page([], False)
            return conversation.page(after_id=after_id, before_id=before_id, limit=limit)

        if after_id is None:
            return query()
        return self._long_poll(pair_key(a, b), wait, query, lambda page: bool(page.messages))

    def send(
        self,
        viewer: str | None,
        author: object,
        recipient: object,
        text: object,
        client_id: str | None = None,
    ) -> Stored:
        sender = canonical_username(author, "author")
        if viewer is not None and viewer != sender:
            raise Forbidden("forbidden", "you can only send as yourself")
        a, b = self._pair(viewer, sender, recipient, ("author", "username"))
        to = b if sender == a else a
        message = _message_text(text)
        block = self.store.contact(to, sender)
        if block is not None and block.blocked:
            raise Forbidden("blocked", f"'{to}' does not accept your messages")
        conversation = self.conversations.get(a, b, create=True)
        assert conversation is not None
        stored = conversation.add_message(
            sender, message, int(arrow.utcnow().timestamp()), client_id
        )
        try:
            if stored.duplicate:
                self._repair_feed(conversation, sender, to, stored)
            else:
                self.store.record_message(sender, to, stored.id, int(stored.date_sent))
        except Unavailable:
            # The message is stored: say so. The feed catches up on the next
            # send in this pair, or on a retry with the same client_id.
            log.warning("feed not updated for a message of %s to %s", sender, to)
        self.notifier.notify(keys_for_message(sender, to))
        return stored

    def _repair_feed(
        self, conversation: Conversation, sender: str, to: str, stored: Stored
    ) -> None:
        """A retried send: its first try may have died between the message and the feed.

        Recount the recipient's unread from the file rather than trusting the
        counter, since newer sends may have overtaken the lost feed write.
        """
        contact = self.store.contact(to, sender)
        marker = contact.read_marker if contact else 0
        unread = conversation.count_from(sender, marker)
        if contact is None or contact.last_id < stored.id or contact.unread != unread:
            self.store.repair_feed(sender, to, stored.id, int(stored.date_sent), unread)

    # -- friends -------------------------------------------------------------
    def _other(self, me: str, other: object) -> str:
        peer = canonical_username(other)
        if peer == me:
            raise BadRequest("same_user", "that is you")
        self.accounts.require_user(peer)
        return peer

    def set_friend(self, me: str, other: object, **flags: int) -> None:
        peer = self._other(me, other)
        self.store.set_flags(me, peer, **flags)
        self.notifier.notify([user_key(me)])

    def friends(self, me: str) -> tuple[list[dict[str, Any]], list[str]]:
        _, contacts = self.store.contacts(me)
        listed = [c for c in contacts if _listed(c)]
        blocked = sorted(c.peer for c in contacts if c.blocked)
        listed.sort(key=lambda c: (c.last_activity or 0, c.seq), reverse=True)
        friends = []
        for contact in listed:
            friends.append(
                {
                    "username": contact.peer,
                    "display_name": contact.display_name,
                    "unread": contact.unread,
                    "last_message": self._last_message(me, contact.peer)
                    if contact.last_id
                    else None,
                }
            )
        return friends, blocked

    def _last_message(self, me: str, peer: str) -> Message | None:
        """The pair's newest message; a damaged file costs its own row, not the list."""
        conversation = self.conversations.get(me, peer, create=False)
        if conversation is None:
            return None
        try:
            return conversation.last_message()
        except Unavailable:
            log.warning("cannot read the last message of %s and %s", me, peer)
            return None

    def mark_read(self, me: str, other: object, last_read_id: int) -> int:
        peer = self._other(me, other)
        contact = self.store.contact(me, peer)
        marker = max(last_read_id, contact.read_marker if contact else 0)
        conversation = self.conversations.get(me, peer, create=False)
        unread = 0 if conversation is None else conversation.count_from(peer, marker)
        self.store.set_read_marker(me, peer, marker, unread)
        self.notifier.notify([user_key(me)])
        return unread

    def updates(self, me: str, since: str | None, wait: float = 0.0) -> Feed:
        start = _cursor(since)

        def query() -> Feed:
            seq, contacts = self.store.contacts(me, start)
            return Feed(str(seq), [_change(c) for c in contacts if since is not None or _listed(c)])

        if since is None:
            return query()
        return self._long_poll(user_key(me), wait, query, lambda feed: bool(feed.changed))

    def _long_poll(
        self, key: str, wait: float, query: Callable[[], T], ready: Callable[[T], bool]
    ) -> T:
        """Run ``query`` until ``ready`` or the (capped) wait ends, sleeping between changes.

        The key's version is read *before* each query, so a change that lands
        between the query and the wait wakes it at once (no lost wake-up).
        """
        deadline = time.monotonic() + min(wait, self.max_wait)
        while True:
            seen = self.notifier.version(key)
            result = query()
            remaining = deadline - time.monotonic()
            if ready(result) or remaining <= 0 or self.notifier.closed:
                return result
            if not self.notifier.wait(key, seen, remaining):
                return result


def _listed(contact: Contact) -> bool:
    return not contact.blocked and not contact.hidden and (contact.added or contact.last_id > 0)


def _change(contact: Contact) -> dict[str, Any]:
    return {
        "username": contact.peer,
        "display_name": contact.display_name,
        "last_id": contact.last_id,
        "unread": contact.unread,
        "last_activity": contact.last_activity,
        "listed": _listed(contact),
        "blocked": contact.blocked,
    }


def _cursor(since: str | None) -> int:
    if since is None or since == "":
        return 0
    if not since.isdigit() or len(since) > 18:
        raise BadRequest("invalid_field", "'since' must be a cursor returned by /updates")
    return int(since)


def _message_text(text: object) -> str:
    if not isinstance(text, str) or text == "":
        raise BadRequest(
            "empty_message" if text == "" else "missing_field", "'message' is required"
        )
    if not text.strip():
        raise BadRequest("empty_message", "a message cannot be only whitespace")
    if len(text) > MAX_MESSAGE_LENGTH:
        raise BadRequest(
            "message_too_long", f"a message is at most {MAX_MESSAGE_LENGTH} characters"
        )
    if "\x00" in text:
        raise BadRequest("invalid_field", "a message cannot contain NUL characters")
    return text
