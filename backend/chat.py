"""The chat service: conversations, friends and the change feed.

Plain Python over the storage layer: the HTTP edge parses a request into typed
values (``Username``, ``Pair``, a checked message text), decides who may act
(``backend/http/auth.py``) and calls one method here. ``require_accounts`` is
true for a signed-in request — then every user named must have an account —
and false only for open mode's anonymous seed client (docs/design.md, "Auth").
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import arrow

from backend.accounts import Accounts
from backend.errors import (
    Blocked,
    EmptyMessage,
    InvalidField,
    MessageTooLong,
    MissingField,
    SameUser,
    StorageUnavailable,
)
from backend.notify import Notifier, keys_for_message, pair_key, user_key
from backend.storage.accounts import AccountStore, Contact
from backend.storage.conversation import Conversation, Message, Page, Stored
from backend.storage.conversations import ConversationStore
from backend.usernames import Pair, Username

log = logging.getLogger(__name__)
MAX_MESSAGE_LENGTH = 4000
T = TypeVar("T")


@dataclass(frozen=True)
class Friend:
    username: str
    display_name: str | None
    unread: int
    last_message: Message | None


@dataclass(frozen=True)
class Friends:
    """``GET /friends``: the list, most recent activity first, and who is blocked."""

    listed: list[Friend]
    blocked: list[str]


@dataclass(frozen=True)
class Feed:
    """``GET /updates``: the counter to pass back next time and the contacts that moved."""

    cursor: int
    changed: list[Contact]


class Chat:
    def __init__(
        self,
        conversations: ConversationStore,
        accounts: Accounts,
        notifier: Notifier,
        *,
        max_wait: float = 30.0,
    ) -> None:
        self.conversations = conversations
        self.accounts = accounts
        self.store: AccountStore = accounts.store
        self.notifier = notifier
        self.max_wait = max_wait

    def _require_accounts(self, pair: Pair) -> None:
        self.accounts.require_exists(pair.low)
        self.accounts.require_exists(pair.high)

    # -- the seed's three operations -----------------------------------------------
    def create_conversation(self, pair: Pair, *, require_accounts: bool = True) -> None:
        if require_accounts:
            self._require_accounts(pair)
        conversation = self.conversations.get(pair.low, pair.high, create=True)
        assert conversation is not None
        conversation.initialise_table()

    def history(
        self,
        pair: Pair,
        *,
        require_accounts: bool = True,
        after_id: int | None = None,
        before_id: int | None = None,
        limit: int | None = None,
        wait: float = 0.0,
    ) -> Page:
        if require_accounts:
            self._require_accounts(pair)
        if after_id is not None and before_id is not None:
            raise InvalidField("give 'after_id' or 'before_id', not both")

        def query() -> Page:
            conversation = self.conversations.get(pair.low, pair.high, create=False)
            if conversation is None:
                return Page([], False)
            return conversation.page(after_id=after_id, before_id=before_id, limit=limit)

        if after_id is None:
            return query()
        return self._long_poll(pair_key(*pair), wait, query, lambda page: bool(page.messages))

    def send(
        self,
        author: Username,
        recipient: Username,
        text: str,
        client_id: str | None = None,
        *,
        require_accounts: bool = True,
    ) -> Stored:
        """Store ``text`` (checked by ``parse_message``) from ``author`` to ``recipient``."""
        pair = Pair.of(author, recipient)
        if require_accounts:
            self._require_accounts(pair)
        block = self.store.contact(recipient, author)
        if block is not None and block.blocked:
            raise Blocked(f"'{recipient}' does not accept your messages")
        conversation = self.conversations.get(pair.low, pair.high, create=True)
        assert conversation is not None
        stored = conversation.add_message(author, text, int(arrow.utcnow().timestamp()), client_id)
        try:
            if stored.duplicate:
                self._repair_feed(conversation, author, recipient, stored)
            else:
                self.store.record_message(author, recipient, stored.id, int(stored.date_sent))
        except StorageUnavailable:
            # The message is stored: say so. The feed catches up on the next
            # send in this pair, or on a retry with the same client_id.
            log.warning("feed not updated for a message of %s to %s", author, recipient)
        self.notifier.notify(keys_for_message(author, recipient))
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
    def _check_peer(self, me: Username, peer: Username) -> None:
        if peer == me:
            raise SameUser("that is you")
        self.accounts.require_user(peer)

    def set_friend(self, me: Username, peer: Username, **flags: int) -> None:
        """Set ``added``/``blocked``/``hidden`` (0 or 1) on my side of ``peer``."""
        self._check_peer(me, peer)
        self.store.set_flags(me, peer, **flags)
        self.notifier.notify([user_key(me)])

    def friends(self, me: Username) -> Friends:
        _, contacts = self.store.contacts(me)
        shown = [c for c in contacts if listed(c)]
        blocked = sorted(c.peer for c in contacts if c.blocked)
        shown.sort(key=lambda c: (c.last_activity or 0, c.seq), reverse=True)
        friends = [
            Friend(
                c.peer,
                c.display_name,
                c.unread,
                self._last_message(me, c.peer) if c.last_id else None,
            )
            for c in shown
        ]
        return Friends(friends, blocked)

    def _last_message(self, me: str, peer: str) -> Message | None:
        """The pair's newest message; a damaged file costs its own row, not the list."""
        conversation = self.conversations.get(me, peer, create=False)
        if conversation is None:
            return None
        try:
            return conversation.last_message()
        except StorageUnavailable:
            log.warning("cannot read the last message of %s and %s", me, peer)
            return None

    def mark_read(self, me: Username, peer: Username, last_read_id: int) -> int:
        """Move my read marker (forward only); my unread count with ``peer`` after it."""
        self._check_peer(me, peer)
        contact = self.store.contact(me, peer)
        marker = max(last_read_id, contact.read_marker if contact else 0)
        conversation = self.conversations.get(me, peer, create=False)
        unread = 0 if conversation is None else conversation.count_from(peer, marker)
        self.store.set_read_marker(me, peer, marker, unread)
        self.notifier.notify([user_key(me)])
        return unread

    def updates(self, me: Username, since: int | None, wait: float = 0.0) -> Feed:
        """My contacts changed after the cursor ``since``; without one, every listed one."""

        def query() -> Feed:
            seq, contacts = self.store.contacts(me, since or 0)
            return Feed(seq, [c for c in contacts if since is not None or listed(c)])

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


def listed(contact: Contact) -> bool:
    """Whether the owner's friend list shows this peer."""
    return not contact.blocked and not contact.hidden and (contact.added or contact.last_id > 0)


def parse_message(text: object) -> str:
    """A message as sent (never trimmed), or why it cannot be one."""
    if not isinstance(text, str) or text == "":
        raise (EmptyMessage if text == "" else MissingField)("'message' is required")
    if not text.strip():
        raise EmptyMessage("a message cannot be only whitespace")
    if len(text) > MAX_MESSAGE_LENGTH:
        raise MessageTooLong(f"a message is at most {MAX_MESSAGE_LENGTH} characters")
    if "\x00" in text:
        raise InvalidField("a message cannot contain NUL characters")
    return text
