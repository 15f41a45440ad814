"""The chat service: conversations, friends and the change feed.

Plain Python over the storage layer: the HTTP edge parses a request into typed
values (``Username``, ``Pair``, a checked message text), decides who may act
(``backend/http/auth.py``) and calls one method here. ``require_accounts`` is
true for a signed-in request — then every user named must have an account —
and false only for open mode's anonymous seed client (docs/design.md, "Auth").
Signed-in senders are held to quotas: a send rate, a rate of new conversations
with people who have not added them, and the free-disk floor (``backend/limits/disk.py``).

Edits and deletions are ``backend/services/edits.py``, search ``backend/services/search.py``,
typing ``backend/services/presence.py`` and privacy settings ``backend/services/preferences.py``;
the revisions they create are read here (``after_rev``).

A long-poll (``backend/wakeups/long_poll.py``) either blocks its thread or, given a
``Parking``, leaves its wait there for the ASGI front to hold without one
(``backend/server/front.py``); ``waiter`` names whose wait it is, for the per-user cap.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

import arrow

from backend.core.clock import now_ms
from backend.core.errors import (
    Blocked,
    EmptyMessage,
    InvalidField,
    MessageTooLong,
    MissingField,
    PairElsewhere,
    RateLimited,
    SameUser,
    StorageUnavailable,
    UnknownMessage,
)
from backend.core.usernames import Pair, Username
from backend.limits.disk import DiskFloor
from backend.limits.rate_limit import Limiter
from backend.services.accounts import Accounts
from backend.storage.accounts import AccountStore, Contact, LastMessage, Listed
from backend.storage.attachments import Upload
from backend.storage.conversation import Conversation, Message, Page, Stored
from backend.storage.conversations import ConversationStore
from backend.wakeups.long_poll import Parking, long_poll
from backend.wakeups.notify import Notifier, keys_for_message, pair_key, user_key

log = logging.getLogger(__name__)
MAX_MESSAGE_LENGTH = 4000
STREAM_PAGE = 500  # messages per query when a whole history is streamed
AROUND_PAGE = 100  # messages around ``around_id`` without a ``limit``
CHANGES_PAGE = 1000  # changes after ``after_rev`` without a ``limit``
# Incomplete feed rows (``_with_last``) completed from their pair files per ``GET /friends``,
# most recent first: after an upgrade the rest answer with what their rows have (the text
# preview) and later calls complete them, so no call opens every pair file.
FILLS_PER_LIST = 20
T = TypeVar("T")


@dataclass(frozen=True)
class Quotas:
    """What a signed-in user may write (from ``Settings``)."""

    send_rate: str = "120 per minute"
    new_conversation_rate: str = "20 per hour"


Friend = Listed  # a person in my friend list, as the accounts file keeps them


@dataclass(frozen=True)
class Friends:
    """``GET /friends``: the list and the requests, most recent activity first, and who
    is blocked."""

    listed: list[Friend]
    blocked: list[str]
    requests: list[Friend]


@dataclass(frozen=True)
class Stream:
    """A whole history, a page at a time, and the pair's revision read before the first."""

    rev: int
    pages: Iterator[list[Message]]


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
        quotas: Quotas | None = None,
        disk: DiskFloor | None = None,
    ) -> None:
        self.conversations = conversations
        self.accounts = accounts
        self.store: AccountStore = accounts.store
        self.notifier = notifier
        self.max_wait = max_wait
        quotas = quotas or Quotas()
        self.sends = Limiter(quotas.send_rate)  # sends, edits and deletions
        self._new_conversations = Limiter(quotas.new_conversation_rate)
        self.disk = disk

    def _require_accounts(self, pair: Pair) -> None:
        self.accounts.require_exists(pair.low)
        self.accounts.require_exists(pair.high)

    def _check_disk(self) -> None:
        if self.disk is not None:
            self.disk.check()

    def _charge_new_conversation(
        self, me: Username, peer: Username, peer_side: Contact | None
    ) -> None:
        """A first message (or file) with someone who has not added ``me`` uses up a quota."""
        if peer_side is not None and (peer_side.added or peer_side.last_id > 0):
            return
        if not self._new_conversations.take(me):
            raise RateLimited(
                "too many new conversations with people who have not added you; try again later",
                retry_after=self._new_conversations.wait(me),
            )

    # -- the seed's three operations -----------------------------------------------
    def create_conversation(
        self, pair: Pair, *, require_accounts: bool = True, viewer: Username | None = None
    ) -> None:
        if require_accounts:
            self._require_accounts(pair)
        if viewer is not None:
            # Blocked: the same refusal as a send, and no file for the pair either.
            peer = pair.other(viewer)
            peer_side = self.store.contact(peer, viewer)
            if peer_side is not None and peer_side.blocked:
                raise Blocked(f"'{peer}' does not accept your messages")
        if viewer is not None and not self.conversations.exists(pair.low, pair.high):
            self._charge_new_conversation(viewer, peer, peer_side)
            self._check_disk()
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
        after_rev: int | None = None,
        around_id: int | None = None,
        limit: int | None = None,
        wait: float = 0.0,
        waiter: str | None = None,
        parking: Parking | None = None,
    ) -> Page:
        """A page of the pair's messages; at most one of the four cursors.

        ``after_rev``: every message changed since that revision (new, edited,
        deleted), in revision order. ``around_id``: the page centred on that
        message. ``wait`` holds an ``after_id`` or ``after_rev`` request until
        there is something to answer.
        """
        if require_accounts:
            self.accounts.require_known(pair.low)
            self.accounts.require_known(pair.high)
        cursors = (after_id, before_id, after_rev, around_id)
        if sum(cursor is not None for cursor in cursors) > 1:
            raise InvalidField(
                "give at most one of 'after_id', 'before_id', 'after_rev', 'around_id'"
            )

        def query() -> Page:
            conversation = self.conversations.get(pair.low, pair.high, create=False)
            if conversation is None:
                if around_id is not None:
                    raise UnknownMessage(f"there is no message {around_id} in this conversation")
                return Page([], False)
            if after_rev is not None:
                return conversation.changes(after_rev, limit or CHANGES_PAGE)
            if around_id is not None:
                return conversation.around(around_id, limit or AROUND_PAGE)
            return conversation.page(after_id=after_id, before_id=before_id, limit=limit)

        if after_id is None and after_rev is None:
            return query()
        return self._long_poll(
            pair_key(*pair), wait, query, lambda page: bool(page.messages), waiter, parking
        )

    def whole_history(self, pair: Pair, *, require_accounts: bool = True) -> Stream:
        """Every message, oldest first, a page at a time: memory stays flat however long.

        Each page is its own short query (``after_id`` of the last one), so a
        slow reader never holds the pair's file; messages sent meanwhile are
        included, at the end. The revision is the first page's: a change made
        while the rest streams is past it, so ``after_rev`` finds it again.
        """
        if require_accounts:
            self.accounts.require_known(pair.low)
            self.accounts.require_known(pair.high)
        conversation = self.conversations.get(pair.low, pair.high, create=False)
        if conversation is None:
            return Stream(0, iter(()))
        # The first page now, so a damaged file is a 503 before any of the reply is sent.
        first = conversation.page(after_id=0, limit=STREAM_PAGE)
        return Stream(first.rev, self._pages(conversation, first))

    @staticmethod
    def _pages(conversation: Conversation, page: Page) -> Iterator[list[Message]]:
        while True:
            if page.messages:
                yield page.messages
            if not page.has_more:
                return
            page = conversation.page(after_id=page.messages[-1].id, limit=STREAM_PAGE)

    def send(
        self,
        author: Username,
        recipient: Username,
        text: str,
        client_id: str | None = None,
        *,
        require_accounts: bool = True,
        reply_to: int | None = None,
        upload: Upload | None = None,
        pair_quota: int | None = None,
        before_store: Callable[[], None] | None = None,
    ) -> Stored:
        """Store ``text`` (checked by ``parse_message``) from ``author`` to ``recipient``,
        optionally as a reply to a message of the same pair.

        ``upload``: a file sent with it (``backend/services/files.py`` checks it first),
        stored in the same transaction, the pair's files held to ``pair_quota``;
        ``before_store`` runs once every refusal of a send has passed, just before
        the message is written (the files service checks the disk there)."""
        pair = Pair.of(author, recipient)
        if require_accounts:
            self._require_accounts(pair)
        peer_side = self.store.contact(recipient, author)
        if peer_side is not None and peer_side.blocked:
            raise Blocked(f"'{recipient}' does not accept your messages")
        if require_accounts:
            if not self.sends.take(author):
                raise RateLimited(
                    "you are sending too fast; wait a little and send again",
                    retry_after=self.sends.wait(author),
                )
            try:
                self._charge_new_conversation(author, recipient, peer_side)
            except RateLimited:
                self.sends.give_back(author)  # refused: not a send
                raise
        self._check_disk()
        if before_store is not None:
            try:
                before_store()
            except BaseException:
                if require_accounts:
                    self.sends.give_back(author)  # refused: not a send
                raise
        conversation = self.conversations.get(pair.low, pair.high, create=True)
        assert conversation is not None
        now = int(arrow.utcnow().timestamp())
        try:
            stored = conversation.add_message(
                author, text, now, client_id, reply_to, upload, pair_quota
            )
        except BaseException:
            if require_accounts:
                self.sends.give_back(author)  # refused (or failed): not a send
            raise
        last = LastMessage(
            stored.id,
            author,
            text,
            int(stored.date_sent),
            client_id,
            stored.rev,
            None,
            False,
            reply_to,
            stored.attachment,  # a file message's preview names its file
        )
        try:
            if stored.duplicate:
                self._repair_feed(conversation, author, recipient, stored, last)
            else:
                self.store.record_message(author, recipient, last)
        except StorageUnavailable:
            # The message is stored: say so. The feed catches up on the next
            # send in this pair, or on a retry with the same client_id.
            log.warning("feed not updated for a message of %s to %s", author, recipient)
        self.notifier.notify(keys_for_message(author, recipient))
        return stored

    def _repair_feed(
        self, conversation: Conversation, sender: str, to: str, stored: Stored, last: LastMessage
    ) -> None:
        """A retried send: its first try may have died between the message and the feed.

        Recount the recipient's unread from the file rather than trusting the
        counter, since newer sends may have overtaken the lost feed write.
        """
        contact = self.store.contact(to, sender)
        marker = contact.read_marker if contact else 0
        unread = conversation.count_from(sender, marker)
        if contact is None or contact.last_id < stored.id or contact.unread != unread:
            found = conversation.page(after_id=stored.id - 1, limit=1).messages
            if found and found[0].id == stored.id:  # as it is now (edited or deleted since?)
                last = LastMessage.of(found[0])
            self.store.repair_feed(sender, to, last, unread)

    # -- friends -------------------------------------------------------------
    def _check_peer(self, me: Username, peer: Username, *, live: bool = True) -> None:
        if peer == me:
            raise SameUser("that is you")
        if live:
            self.accounts.require_user(peer)
        else:
            self.accounts.require_known(peer)

    def set_friend(self, me: Username, peer: Username, **flags: int) -> None:
        """Set ``added``/``blocked``/``hidden`` (0 or 1) on my side of ``peer``.

        Adding needs a live account and accepts their conversation for good (a request
        no more); hiding or blocking works on a deleted one too.
        """
        self._check_peer(me, peer, live=flags.get("added") == 1)
        if flags.get("added") == 1:
            flags["accepted"] = 1  # a request accepted; removed later, they stay accepted
        self.store.set_flags(me, peer, **flags)
        self.notifier.notify([user_key(me)])

    def friends(self, me: Username) -> Friends:
        """One query of the accounts file, however many contacts: no pair file is opened
        (except once for a pair whose row does not know its newest message, ``_with_last``,
        at most ``FILLS_PER_LIST`` of them a call). Conversations started by strangers I
        have not accepted are ``requests``."""
        rows, blocked = self.store.friend_list(me, now_ms())
        incomplete = [i for i, f in enumerate(rows) if f.last_id and not f.last_complete]
        for i in incomplete[:FILLS_PER_LIST]:  # most recent first, as listed
            rows[i] = self._with_last(me, rows[i])
        return Friends([f for f in rows if not f.request], blocked, [f for f in rows if f.request])

    def _with_last(self, me: str, friend: Friend) -> Friend:
        """A row that does not know its pair's newest message (from before version 2 of the
        accounts file), or not whole (from before version 8 kept its file and reactions):
        read the pair's file once, remember it. Where the file cannot make the row better
        (no file, one served by another node, a damaged one, or one behind the feed) the
        row is taken as it is, once: the pair's next change writes it whole. Trouble that
        may pass (busy, folder full, out of file handles) leaves the row incomplete, for a
        later list to try again."""
        try:
            conversation = self.conversations.get(me, friend.username, create=False)
            found = None if conversation is None else conversation.last_message()
        except PairElsewhere:
            found = None  # multi-node: the node serving the pair writes its changes whole
        except StorageUnavailable as exc:
            # an unreadable file costs its own row, not the list
            if not exc.damaged:
                log.warning(
                    "cannot read the last message of %s and %s now (%s): tried again later",
                    me,
                    friend.username,
                    exc.message,
                )
                return friend
            log.warning("cannot read the last message of %s and %s", me, friend.username)
            found = None
        if found is None or found.id < friend.last_id:
            self.store.keep_last_message(me, friend.username, friend.last_id)
            return friend
        self.store.set_last_message(me, friend.username, LastMessage.of(found))
        return friend._replace(last_message=found, last_id=found.id)

    def mark_read(self, me: Username, peer: Username, last_read_id: int) -> int:
        """Move my read marker forward, never past the pair's newest message.

        A marker beyond the newest id would count every later message as read.
        Returns my unread count with ``peer`` after it.
        """
        self._check_peer(me, peer, live=False)
        contact = self.store.contact(me, peer)
        conversation = self.conversations.get(me, peer, create=False)
        newest = 0 if conversation is None else conversation.last_id()
        marker = min(max(last_read_id, contact.read_marker if contact else 0), newest)
        unread = 0 if conversation is None else conversation.count_from(peer, marker)
        mine, theirs = self.store.set_read_marker(me, peer, marker, unread)
        moved = [key for key, yes in ((user_key(me), mine), (user_key(peer), theirs)) if yes]
        if moved:
            self.notifier.notify(moved)
        return unread

    def updates(
        self,
        me: Username,
        since: int | None,
        wait: float = 0.0,
        *,
        parking: Parking | None = None,
    ) -> Feed:
        """My contacts changed after the cursor ``since``; without one, every listed one
        and every request."""

        def query() -> Feed:
            seq, contacts = self.store.contacts(me, since or 0, now_ms())
            return Feed(seq, [c for c in contacts if since is not None or listed(c) or c.request])

        if since is None:
            return query()
        return self._long_poll(
            user_key(me), wait, query, lambda feed: bool(feed.changed), me, parking
        )

    def _long_poll(
        self,
        key: str,
        wait: float,
        query: Callable[[], T],
        ready: Callable[[T], bool],
        waiter: str | None,
        parking: Parking | None,
    ) -> T:
        """``long_poll`` with the wait capped at ``max_wait``."""
        capped = min(wait, self.max_wait)
        return long_poll(self.notifier, key, capped, query, ready, waiter, parking)


def listed(contact: Contact) -> bool:
    """Whether the owner's friend list shows this peer (a deleted peer's conversation
    stays; a request waits outside it, in ``requests``)."""
    return (
        not contact.blocked
        and not contact.hidden
        and (contact.added or contact.last_id > 0)
        and not contact.request
    )


def parse_message(text: object) -> str:
    """A message as sent (never trimmed), or why it cannot be one."""
    if text is None:
        raise MissingField("'message' is required")
    if not isinstance(text, str):
        raise InvalidField("'message' must be text")
    if text == "":
        raise EmptyMessage("'message' is required")
    if not text.strip():
        raise EmptyMessage("a message cannot be only whitespace")
    if len(text) > MAX_MESSAGE_LENGTH:
        raise MessageTooLong(f"a message is at most {MAX_MESSAGE_LENGTH} characters")
    if "\x00" in text:
        raise InvalidField("a message cannot contain NUL characters")
    return text
