"""The headless sync core: the connection, the one long-poll, the outbox, the client model.

One :class:`SyncCore` per signed-in user owns everything the client knows:
friends and their unread counts, who is blocked, the open chat's loaded
:class:`~tui.core.conversation.Conversation`, read markers, drafts, the outbox and
the connection state. Screens and widgets read it and call its intents
(:meth:`open_chat`, :meth:`send`, :meth:`seen`, …); after each change it calls
its subscribers with a typed event of :mod:`tui.core.events`. It imports no
Textual: it can be driven by a test, a script, or another front end.

:meth:`run` runs three loops in one task group until the session ends:

- the **feed loop** holds the client's only long-poll, ``GET /updates`` with
  ``wait``. The feed reports every conversation that changed, including the open
  one; when it says the open chat has a newer ``last_id`` than what is loaded,
  the loop fetches ``get_message_history`` with ``after_id`` (no ``wait``). So a
  signed-in client holds one request on the server, not one per open chat;
- the **sender** drains the outbox in order, each message with its ``client_id``
  so a retry after a lost reply stores nothing twice;
- the **marker** tells the server what was read: only messages that were on
  screen in the focused chat (the view reports them with :meth:`seen`).

Failures go through :class:`~tui.core.connection.Connection`: unreachable →
a probe about every second (the feed asks with ``wait=0`` until it gets through),
server trouble → exponential backoff; a 401 ends the session.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from tui.client.errors import describe
from tui.client.http import ApiError, PairchatClient, ServerUnreachable
from tui.client.models import Change, Friend, FriendList, Message, Session
from tui.core.connection import Connection
from tui.core.conversation import Conversation, Merge
from tui.core.drafts import Drafts
from tui.core.events import (
    ChatLoaded,
    ChatOpened,
    ConnectionChanged,
    Event,
    FriendsChanged,
    MessagesAdded,
    OutboxChanged,
    ProfileLoaded,
    Publisher,
    SendRefused,
    SessionEnded,
    TypingChanged,
    WindowMoved,
)
from tui.core.outbox import Outbox, OutboxItem
from tui.core.prefs import Prefs
from tui.core.tasks import SessionOver, Tasks

MAX_MESSAGE = 4000
"""The server's limit, in characters (docs/api.md)."""
PAGE = 100
"""Messages fetched when a chat opens and per scrollback page."""
UNREAD_PAGE = 300
"""At most this many messages are fetched to open a chat, to reach where its unread start."""
SEARCH_PAGE = 1000
"""Messages per request while searching back through a conversation (the server's maximum)."""
CATCH_UP_PAGE = 500
POLL_WAIT = 50.0
"""Seconds the server may hold the feed's long-poll (it caps it at 60)."""
MIN_POLL_INTERVAL = 1.0
"""A long-poll that comes back empty sooner than this (a server without ``wait``) sleeps first."""
OUTBOX_RECHECK = 5.0
"""Seconds between looks at the outbox file for items another instance added."""
TYPING_SHOWN = 6.0
"""Seconds "bob is typing…" stays after the last sign of it (the server sends one every ~3 s)."""
TYPING_EVERY = 3.0
"""Seconds between two typing signals sent while composing."""


def _check_text(text: str) -> None:
    if not text.strip():
        raise ValueError("a message cannot be empty")
    if len(text) > MAX_MESSAGE:
        raise ValueError(f"a message is at most {MAX_MESSAGE} characters")


def friend_sort_key(friend: Friend) -> tuple[int, float, str]:
    """Most recent activity first; friends never talked to last, by name."""
    try:
        when = float(friend.last_activity) if friend.last_activity is not None else None
    except (TypeError, ValueError):
        when = None
    label = (friend.display_name or friend.username).casefold()
    return (1, 0.0, label) if when is None else (0, -when, label)


class SyncCore:
    def __init__(
        self,
        client: PairchatClient,
        session: Session,
        *,
        outbox: Outbox,
        drafts: Drafts,
        prefs: Prefs,
        poll_wait: float = POLL_WAIT,
    ) -> None:
        self.client = client
        self.session = session
        self.me = session.username.lower()
        self.outbox = outbox
        self.drafts = drafts
        self.prefs = prefs
        self.poll_wait = poll_wait
        self.friends: dict[str, Friend] = {}
        self.requests: dict[str, Friend] = {}
        """Conversations started by people who are not my friends (no toast, no bell)."""
        self.blocked: set[str] = set()
        self.typing_until: dict[str, float] = {}
        """Peers shown as typing, until this ``time.monotonic()``."""
        self.chat: Conversation | None = None
        self.events = Publisher()
        self.connection = Connection(lambda state: self.events.publish(ConnectionChanged(state)))
        self.tasks = Tasks(self.connection)
        self._cursor: str | None = None
        self._seen: dict[str, int] = {}
        self._told: dict[str, int] = {}
        self._outbox_wakeup = asyncio.Event()
        self._marker_wakeup = asyncio.Event()
        self._tail_task: asyncio.Task[None] | None = None
        self._typing_sent: dict[str, float] = {}
        self.features: set[str] = {"typing", "search"}
        """Optional routes the server has: a 404 removes one (an older server), and the
        client falls back (no typing signals; search by fetching pages)."""

    # -- publishing -------------------------------------------------------------------
    def subscribe(self, callback: Callable[[Event], None]) -> None:
        self.events.subscribe(callback)

    # -- reading the model ---------------------------------------------------------------
    @property
    def open_peer(self) -> str | None:
        return self.chat.peer if self.chat is not None else None

    def ordered_friends(self) -> list[Friend]:
        return sorted(self.friends.values(), key=friend_sort_key)

    def label(self, username: str) -> str:
        friend = self.friends.get(username) or self.requests.get(username)
        return (friend.display_name if friend else "") or username

    def pending_for(self, peer: str) -> list[OutboxItem]:
        return self.outbox.for_peer(peer)

    def next_unread(self) -> str | None:
        """The next friend with unread messages, in list order, after the open chat."""
        ordered = self.ordered_friends()
        names = [f.username for f in ordered]
        current = self.open_peer
        start = names.index(current) + 1 if current in names else 0
        for friend in ordered[start:] + ordered[:start]:
            if friend.unread and friend.username != current:
                return friend.username
        return None

    # -- running ---------------------------------------------------------------------------
    async def run(self) -> None:
        """Run the loops until the session ends (a 401 or :meth:`sign_out`) or cancellation."""
        try:
            async with asyncio.TaskGroup() as group:
                self.tasks.group = group
                group.create_task(self._feed_loop())
                group.create_task(self._sender_loop())
                group.create_task(self._marker_loop())
        except* SessionOver:
            self.events.publish(SessionEnded("Your session has ended. Please sign in again."))
        finally:
            self.tasks.group = None
            self.flush_drafts()

    # -- the feed loop ---------------------------------------------------------------------
    async def _feed_loop(self) -> None:
        while True:
            try:
                if self._cursor is None:
                    await self._load_everything()
                else:
                    await self._poll_feed()
                await self._catch_up()
            except (ApiError, ServerUnreachable) as exc:
                if isinstance(exc, ApiError) and exc.status == 400:
                    self._cursor = None  # a cursor the server no longer knows: start over
                await self.tasks.retry_after(exc)

    async def _load_everything(self) -> None:
        if not self.session.display_name:
            self.session = await self.client.me()
            self.events.publish(ProfileLoaded())
        listing = await self.client.friends()
        feed = await self.client.updates()
        self.connection.ok()
        self._set_friends(listing)
        self._cursor = feed.cursor
        self._apply(feed.changes, initial=True)

    async def _poll_feed(self) -> None:
        # Until a request gets through after a failure, probe without holding.
        wait = self.poll_wait if self.connection.current.state == "connected" else 0.0
        started = time.monotonic()
        feed = await self.client.updates(since=self._cursor, wait=wait)
        self.connection.ok()
        self._cursor = feed.cursor or self._cursor
        if feed.changes:
            self._apply(feed.changes)
        elif wait and time.monotonic() - started < MIN_POLL_INTERVAL:
            await asyncio.sleep(MIN_POLL_INTERVAL)

    def _set_friends(self, listing: FriendList) -> None:
        self.blocked = set(listing.blocked)
        self.friends = {f.username: f for f in listing.friends}
        self.requests = {f.username: f for f in listing.requests}
        self.events.publish(FriendsChanged())

    def _apply(self, changes: tuple[Change, ...], initial: bool = False) -> None:
        rose: list[Friend] = []
        for change in changes:
            name = change.username
            if change.blocked:
                self.blocked.add(name)
            else:
                self.blocked.discard(name)
            if change.typing:
                self.typing_until[name] = time.monotonic() + TYPING_SHOWN
                self.events.publish(TypingChanged(name))
            before = self.friends.get(name) or self.requests.get(name) or Friend(username=name)
            # Ids and revisions only grow, unless an operator erased the pair (forget):
            # then they start again, and what was loaded of it is gone.
            erased = change.last_id < before.last_id or 0 < change.rev < before.rev
            after = replace(
                before,
                display_name=change.display_name or before.display_name,
                unread=change.unread,
                last_id=change.last_id if erased else max(before.last_id, change.last_id),
                last_activity=change.last_activity or before.last_activity,
                rev=change.rev if erased else max(before.rev, change.rev),
                peer_read_up_to=change.peer_read_up_to,
                request=change.request,
            )
            if not change.listed and not change.request:
                self.friends.pop(name, None)
                self.requests.pop(name, None)
                continue
            home, other = (
                (self.requests, self.friends)
                if change.request
                else (
                    self.friends,
                    self.requests,
                )
            )
            other.pop(name, None)
            home[name] = after
            if erased and name == self.open_peer:
                self._reopen(name)
            if (
                not initial
                and not change.request
                and after.unread > before.unread
                and name != self.open_peer
                and name not in self.prefs.muted
            ):
                rose.append(after)
            if after.unread and self._seen.get(name, 0) > self._told.get(name, 0):
                self._marker_wakeup.set()  # seen before the feed said it was unread
        self.events.publish(FriendsChanged(tuple(rose)))

    async def _catch_up(self) -> None:
        """Fetch what the feed says the open chat has and the view has not.

        With revisions (``after_rev``): new messages, edits and deletes of old ones
        alike. A server without them is asked with ``after_id`` (new messages only).
        """
        chat = self.chat
        while chat is not None and chat.loaded and not chat.unavailable and chat is self.chat:
            friend = self.friends.get(chat.peer) or self.requests.get(chat.peer)
            if friend is None:
                return
            if chat.rev and friend.rev:
                if friend.rev <= chat.rev:
                    return
                page = await self.client.history(chat.peer, after_rev=chat.rev, limit=CATCH_UP_PAGE)
            elif friend.last_id > chat.last_id and not chat.has_more_newer:
                page = await self.client.history(
                    chat.peer, after_id=chat.last_id, limit=CATCH_UP_PAGE
                )
            else:
                return
            self.connection.ok()
            if chat is not self.chat:
                return
            before = chat.rev
            self._merge(chat, page.messages)
            chat.rev = max(chat.rev, page.rev)
            if not page.has_more and (not page.messages or chat.rev == before):
                return

    def _merge(self, chat: Conversation, messages: tuple[Message, ...] | list[Message]) -> Merge:
        merge = chat.merge(messages)
        if merge:
            self.events.publish(MessagesAdded(chat.peer, merge))
        return merge

    # -- the open chat -------------------------------------------------------------------------
    def open_chat(self, peer: str) -> None:
        """Show ``peer``'s conversation: an empty one at once, its newest page when it arrives."""
        if self.chat is not None and self.chat.peer == peer:
            return
        self.flush_drafts()
        if self._tail_task is not None:
            self._tail_task.cancel()
        self.chat = Conversation(peer, self.me)
        self.events.publish(ChatOpened(peer))
        self._tail_task = self.tasks.spawn(self._load_tail(self.chat))

    def _reopen(self, peer: str) -> None:
        """Load the open chat again from scratch (its pair was erased and restarted)."""
        if self._tail_task is not None:
            self._tail_task.cancel()
        self.chat = Conversation(peer, self.me)
        self.events.publish(ChatOpened(peer))
        self._tail_task = self.tasks.spawn(self._load_tail(self.chat))

    def close_chat(self) -> None:
        if self.chat is None:
            return
        self.flush_drafts()
        if self._tail_task is not None:
            self._tail_task.cancel()
        self.chat = None
        self.events.publish(ChatOpened(None))

    async def _load_tail(self, chat: Conversation) -> None:
        friend = self.friends.get(chat.peer)
        unread = friend.unread if friend else 0
        limit = max(PAGE, min(UNREAD_PAGE, unread + 50))
        while chat is self.chat:
            try:
                page = await self.client.history(chat.peer, limit=limit)
            except ApiError as exc:
                if exc.status in (403, 404):
                    chat.unavailable = describe(exc)
                    chat.loaded = True
                    self.events.publish(ChatLoaded(chat.peer))
                    return
                await self.tasks.retry_after(exc)
                continue
            except ServerUnreachable as exc:
                await self.tasks.retry_after(exc)
                continue
            self.connection.ok()
            if chat is not self.chat:
                return
            chat.merge(page.messages)
            chat.rev = max(chat.rev, page.rev)
            chat.has_more_older = page.has_more
            chat.loaded = True
            chat.mark_first_unread(unread)
            self.events.publish(ChatLoaded(chat.peer))
            with contextlib.suppress(ApiError, ServerUnreachable):
                await self._catch_up()  # anything the feed announced while the page was on its way
            return

    async def load_older(self, peer: str) -> int:
        """Fetch the page before the oldest loaded message; how many were added."""
        chat = self.chat
        if chat is None or chat.peer != peer or not chat.has_more_older or chat.first_id is None:
            return 0
        window = chat.window
        page = await self.client.history(peer, before_id=chat.first_id, limit=PAGE)
        if chat is not self.chat or chat.window != window:
            return 0
        chat.has_more_older = page.has_more
        merge = self._merge(chat, page.messages)
        if not merge:  # nothing new, but has_more_older changed: the view redraws its top line
            self.events.publish(MessagesAdded(chat.peer, merge))
        return len(merge.older)

    async def search(
        self, peer: str, term: str, before_id: int | None, progress: Callable[[int], None]
    ) -> Message | None:
        """The newest message containing ``term`` (case-insensitive) older than ``before_id``.

        Looks at the loaded messages first, then fetches older pages (which stay
        loaded, so the match is shown in context). Cancel the awaiting task to stop.
        """
        chat = self.chat
        needle = term.casefold()
        if chat is None or chat.peer != peer or not needle:
            return None
        scanned = 0
        for message in reversed(chat.messages):
            if before_id is None or message.id < before_id:
                scanned += 1
                if needle in message.text.casefold():
                    return message
        window = chat.window
        while chat is self.chat and chat.has_more_older and chat.first_id is not None:
            page = await self.client.history(peer, before_id=chat.first_id, limit=SEARCH_PAGE)
            if chat is not self.chat or chat.window != window:
                return None
            chat.has_more_older = page.has_more
            self._merge(chat, page.messages)
            scanned += len(page.messages)
            progress(scanned)
            for message in reversed(page.messages):
                if needle in message.text.casefold():
                    return message
        return None

    async def find(self, peer: str, term: str, before_id: int | None) -> Message | None:
        """The newest match of ``term`` older than ``before_id`` in the *whole* history.

        Asks the server (full-text search in the pair's file); a server without it
        gets the client-side search over pages (:meth:`search`).
        """
        if "search" in self.features:
            try:
                found = await self.client.search_messages(peer, term, before_id=before_id, limit=1)
            except ApiError as exc:
                if exc.status != 404 or exc.code == "unknown_user":
                    raise
                self.features.discard("search")
            else:
                return found.results[0] if found.results else None
        return await self.search(peer, term, before_id, lambda _: None)

    async def show_message(self, peer: str, message_id: int) -> bool:
        """Make ``message_id`` loaded: if it is not, load the page around it instead."""
        chat = self.chat
        if chat is None or chat.peer != peer:
            return False
        if message_id in chat:
            return True
        page = await self.client.history(peer, around_id=message_id, limit=PAGE)
        if chat is not self.chat:
            return False
        if not any(m.id == message_id for m in page.messages):
            return False
        chat.reset(page.messages, page.has_more, page.has_more_after)
        chat.rev = max(chat.rev, page.rev)
        self.events.publish(WindowMoved(peer, message_id))
        return True

    async def load_newer(self, peer: str) -> int:
        """A window around an old message: fetch the page after it; how many were added."""
        chat = self.chat
        if chat is None or chat.peer != peer or not chat.has_more_newer:
            return 0
        window = chat.window
        page = await self.client.history(peer, after_id=chat.last_id, limit=PAGE)
        if chat is not self.chat or chat.window != window:
            return 0
        chat.has_more_newer = page.has_more
        merge = chat.merge(page.messages, newer_page=True)
        self.events.publish(MessagesAdded(peer, merge))
        if not chat.has_more_newer:
            with contextlib.suppress(ApiError, ServerUnreachable):
                await self._catch_up()
        return len(merge.newer)

    async def show_newest(self, peer: str) -> bool:
        """Go back to the newest messages: one request for the newest page, never a crawl.

        A window far back in history (a search match, the original of a reply) is
        replaced by the newest page: what was loaded around the old message is
        dropped, and older pages load again on demand. When the loaded messages
        already reach the newest, nothing is asked (False: nothing changed).
        """
        chat = self.chat
        if chat is None or chat.peer != peer or not chat.loaded or not chat.has_more_newer:
            return False
        window = chat.window
        page = await self.client.history(peer, limit=PAGE)
        self.connection.ok()
        if chat is not self.chat or chat.window != window:
            return False
        chat.reset(page.messages, page.has_more, has_more_newer=False)
        chat.rev = max(chat.rev, page.rev)
        self.events.publish(WindowMoved(peer, None))
        with contextlib.suppress(ApiError, ServerUnreachable):
            await self._catch_up()  # anything that arrived while the page was on its way
        return True

    # -- typing --------------------------------------------------------------------------------
    def is_typing(self, peer: str) -> bool:
        return self.typing_until.get(peer, 0.0) > time.monotonic()

    def composing(self, peer: str) -> None:
        """I am typing in ``peer``'s chat: tell them, at most every few seconds."""
        now = time.monotonic()
        if "typing" not in self.features or now - self._typing_sent.get(peer, -1e9) < TYPING_EVERY:
            return
        self._typing_sent[peer] = now
        self.tasks.spawn(self._send_typing(peer))

    async def _send_typing(self, peer: str) -> None:
        try:
            await self.client.typing(peer)
        except ApiError as exc:
            if exc.status == 404 and exc.code != "unknown_user":
                self.features.discard("typing")
        except ServerUnreachable:
            pass  # ephemeral: never retried

    def typing_expired(self) -> list[str]:
        """Peers whose "typing…" just ran out (the view polls this every second)."""
        now = time.monotonic()
        gone = [peer for peer, until in self.typing_until.items() if until <= now]
        for peer in gone:
            del self.typing_until[peer]
        return gone

    # -- reading ----------------------------------------------------------------------------
    def seen(self, peer: str, message_id: int) -> None:
        """The view showed ``peer``'s messages up to ``message_id`` in the focused chat."""
        if message_id > self._seen.get(peer, 0):
            self._seen[peer] = message_id
            self._marker_wakeup.set()

    async def _marker_loop(self) -> None:
        while True:
            await self._marker_wakeup.wait()
            self._marker_wakeup.clear()
            for peer, seen in list(self._seen.items()):
                friend = self.friends.get(peer)
                if seen <= self._told.get(peer, 0) or friend is None or not friend.unread:
                    continue
                try:
                    unread = await self.client.mark_read(peer, seen)
                except (ApiError, ServerUnreachable) as exc:
                    self._marker_wakeup.set()  # try again after the pause
                    await self.tasks.retry_after(exc)
                    break
                self.connection.ok()
                self._told[peer] = seen
                current = self.friends.get(peer)
                if current is not None and current.unread != unread:
                    self.friends[peer] = replace(current, unread=unread)
                    self.events.publish(FriendsChanged())

    # -- sending ---------------------------------------------------------------------------
    def send(self, peer: str, text: str, reply_to: int | None = None) -> OutboxItem:
        """Queue ``text`` for ``peer``: on disk before this returns, sent in order."""
        _check_text(text)
        return self._queue(self.outbox.add(peer, text, reply_to=reply_to))

    def edit(self, peer: str, message_id: int, text: str) -> OutboxItem:
        """Queue an edit of my message ``message_id`` (kept and retried like a send)."""
        _check_text(text)
        return self._queue(self.outbox.add(peer, text, kind="edit", target=message_id))

    def delete(self, peer: str, message_id: int) -> OutboxItem:
        return self._queue(self.outbox.add(peer, "", kind="delete", target=message_id))

    def _queue(self, item: OutboxItem) -> OutboxItem:
        self._typing_sent.pop(item.to, None)
        self.events.publish(OutboxChanged(frozenset({item.to})))
        self._outbox_wakeup.set()
        return item

    def retry(self, client_id: str) -> None:
        item = self.outbox.get(client_id)
        if item is not None:
            self.outbox.retry(client_id)
            self.events.publish(OutboxChanged(frozenset({item.to})))
            self._outbox_wakeup.set()

    def discard(self, client_id: str) -> OutboxItem | None:
        item = self.outbox.remove(client_id)
        if item is not None:
            self.events.publish(OutboxChanged(frozenset({item.to})))
        return item

    async def _sender_loop(self) -> None:
        while True:
            if self.outbox.reload_if_changed():
                self.events.publish(OutboxChanged(frozenset(i.to for i in self.outbox.items)))
            item = self.outbox.next_to_send()
            if item is None:
                self._outbox_wakeup.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._outbox_wakeup.wait(), OUTBOX_RECHECK)
                continue
            try:
                if item.kind == "send":
                    sent = await self.client.send(
                        item.to, item.text, item.client_id, reply_to=item.reply_to
                    )
                    stored = Message(
                        sent.id,
                        self.me,
                        item.text,
                        sent.date_sent,
                        item.client_id,
                        rev=sent.rev,
                        reply_to=item.reply_to,
                    )
                elif item.kind == "edit" and item.target is not None:
                    stored = await self.client.edit_message(item.to, item.target, item.text)
                elif item.target is not None:
                    stored = await self.client.delete_message(item.to, item.target)
                else:  # an item this version cannot read: keep it, refuse it visibly
                    raise ApiError(400, "unknown_item", f"cannot send a '{item.kind}' item")
            except ApiError as exc:
                if exc.status == 401 or exc.transient:
                    await self.tasks.retry_after(exc)
                    continue
                reason = describe(exc)
                self.outbox.fail(item.client_id, reason)
                self.events.publish(OutboxChanged(frozenset({item.to})))
                self.events.publish(SendRefused(replace(item, error=reason)))
                continue
            except ServerUnreachable as exc:
                await self.tasks.retry_after(exc)
                continue
            self.connection.ok()
            self.outbox.remove(item.client_id)
            self._delivered(item, stored)

    def _delivered(self, item: OutboxItem, message: Message) -> None:
        friend = self.friends.get(item.to) or Friend(username=item.to)
        if item.is_send and message.id >= friend.last_id:
            when = message.date_sent if message.date_sent is not None else int(item.created)
            self.friends[item.to] = replace(friend, last_id=message.id, last_activity=when)
            self.events.publish(FriendsChanged())
        chat = self.chat
        if chat is not None and chat.peer == item.to and chat.loaded:
            self._merge(chat, [message])
        self.events.publish(OutboxChanged(frozenset({item.to})))

    # -- drafts ------------------------------------------------------------------------------
    def draft(self, peer: str) -> str:
        return self.drafts.get(peer)

    def set_draft(self, peer: str, text: str) -> None:
        self.drafts.set(peer, text)
        self.drafts.save_soon()

    def flush_drafts(self) -> None:
        self.drafts.save()

    def is_muted(self, peer: str) -> bool:
        return peer in self.prefs.muted

    def toggle_mute(self, peer: str) -> bool:
        """Mute or unmute ``peer``'s chat (no bell, toast or notification); the new state."""
        muted = not self.is_muted(peer)
        self.prefs.set_muted(peer, muted)
        self.events.publish(FriendsChanged())
        return muted

    # -- friends and the session ---------------------------------------------------------------
    async def add_friend(self, username: str) -> None:
        await self.client.add_friend(username)
        name = username.lower()
        self.friends.setdefault(name, Friend(username=name))
        self.events.publish(FriendsChanged())

    async def block(self, username: str) -> None:
        await self.client.block_friend(username)
        self.blocked.add(username)
        self.friends.pop(username, None)
        if self.open_peer == username:
            self.close_chat()
        self.events.publish(FriendsChanged())

    async def unblock(self, username: str) -> None:
        await self.client.unblock_friend(username)
        self.blocked.discard(username)
        self.events.publish(FriendsChanged())

    async def accept(self, username: str) -> None:
        """A message request: make them a friend (they join the list)."""
        await self.client.add_friend(username)
        request = self.requests.pop(username, None) or Friend(username=username)
        self.friends[username] = replace(request, request=False)
        self.events.publish(FriendsChanged())

    async def decline(self, username: str) -> None:
        """A message request: hide it until they write again (block to stop them)."""
        await self.client.remove_friend(username)
        self.requests.pop(username, None)
        self.events.publish(FriendsChanged())

    async def change_settings(self, **values: bool) -> dict[str, Any]:
        return await self.client.settings(**values)

    def end_session(self, reason: str) -> None:
        """The token is no longer valid (e.g. signed out everywhere): back to sign-in."""
        self.client.token = None
        self.events.publish(SessionEnded(reason))

    async def sign_out(self) -> bool:
        """Revoke the token on the server; False when it could not be reached (the caller
        forgets the token locally either way)."""
        self.flush_drafts()
        try:
            await self.client.logout()
        except (ApiError, ServerUnreachable):
            return False
        finally:
            self.client.token = None
        return True
