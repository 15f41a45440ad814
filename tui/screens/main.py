"""The main screen: friend list (left), chat pane (right), status line, footer.

Three long-lived async workers do all the network I/O, each a loop that fetches,
waits and repeats, backing off (exponential, capped) on errors:

- the friend loop: ``GET /friends`` once, then ``GET /updates?since=…&wait=…``;
- the chat loop, one per open conversation, restarted when another chat opens:
  the tail (``limit``) first, then ``after_id`` + ``wait``;
- the sender, which drains the persistent outbox in order with ``client_id``.

They report through the messages of :mod:`tui.messages`; the handlers here update
the widgets. Timers only redraw (the status countdown, relative times): a timer
never starts a request.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any, cast

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Input, OptionList, Static

from tui.api import ApiError, ServerUnreachable, Session
from tui.backoff import Backoff
from tui.formatting import plain, safe
from tui.messages import (
    ConnectionChanged,
    FriendsChanged,
    FriendsLoaded,
    MarkedRead,
    MessagesArrived,
    MessageSent,
    OlderLoaded,
    SearchDone,
    SendFailed,
    SessionExpired,
)
from tui.messages import HistoryLoaded as HistoryLoadedMsg
from tui.outbox import Outbox
from tui.screens.dialogs import AddFriendDialog, BlockDialog, UnblockDialog
from tui.widgets.chat_log import ChatLog
from tui.widgets.friend_list import Friend, FriendList
from tui.widgets.status_bar import StatusBar

if TYPE_CHECKING:
    from tui.app import PairchatApp

PAGE = 100
"""Messages fetched when a chat opens and per scrollback page."""
SEARCH_PAGE = 500
POLL_WAIT = 50.0
"""Seconds a long-poll may be held by the server."""
MIN_POLL_INTERVAL = 1.0
"""A poll that comes back empty sooner than this (server without ``wait``) sleeps first."""
MAX_MESSAGE = 4000
SEARCH_HINT = "Search this chat (Enter: next older match, Esc: close)"
MESSAGE_HINT = "Type a message, Enter to send"


class Connection:
    """Shared connection state of the loops: one success wakes every loop in backoff."""

    def __init__(self, screen: MainScreen) -> None:
        self.screen = screen
        self.online = asyncio.Event()
        self.state = "connecting"

    def ok(self) -> None:
        self.online.set()
        if self.state != "connected":
            self.state = "connected"
            self.screen.post_message(ConnectionChanged("connected"))

    def failed(self, delay: float) -> None:
        self.online.clear()
        self.state = "reconnecting"
        self.screen.post_message(ConnectionChanged("reconnecting", time.monotonic() + delay))

    async def pause(self, delay: float) -> None:
        """Sleep ``delay`` seconds, or less if another loop reaches the server meanwhile."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.online.wait(), timeout=delay)
        # Past the retry time the status line reads "offline" until a loop gets through.


class MainScreen(Screen[None]):
    BINDINGS = [
        Binding("ctrl+n", "next_unread", "Next unread", id="main.next_unread"),
        Binding("ctrl+f", "search", "Search", id="main.search"),
        Binding("f2", "add_friend", "Add friend", id="main.add_friend"),
        Binding("f4", "block", "Block", id="main.block"),
        Binding("f6", "unblock", "Unblock", id="main.unblock"),
        Binding("pageup", "older", "Older", show=False, priority=True, id="main.page_up"),
        Binding("pagedown", "newer", "Newer", show=False, priority=True, id="main.page_down"),
        Binding("escape", "escape", "Friends", show=False, id="main.escape"),
        Binding("ctrl+o", "focus_friends", "Friends", show=False, id="main.focus_friends"),
    ]

    def __init__(self, session: Session, outbox: Outbox) -> None:
        super().__init__()
        self.session = session
        self.me = session.username
        self.outbox = outbox
        self.open_peer: str | None = None
        self.blocked: list[str] = []
        self.connection = Connection(self)
        self._outbox_wakeup = asyncio.Event()
        self._search_term = ""
        self._search_current: int | None = None
        self._last_marked: dict[str, int] = {}

    @property
    def papp(self) -> PairchatApp:
        return cast("PairchatApp", self.app)

    # -- layout -------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        clock = self.papp.clock
        yield StatusBar(self.me, self.session.display_name, id="status")
        with Horizontal(id="body"):
            yield FriendList(clock=clock, id="friends")
            with Vertical(id="chat"):
                yield Static("", id="chat-title", markup=False)
                yield ChatLog(self.me, clock=clock, id="log")
                yield Input(placeholder=SEARCH_HINT, id="search")
                yield Input(placeholder=MESSAGE_HINT, id="message", max_length=MAX_MESSAGE)
        yield Footer()

    @property
    def friend_list(self) -> FriendList:
        return self.query_one("#friends", FriendList)

    @property
    def chat_log(self) -> ChatLog:
        return self.query_one("#log", ChatLog)

    @property
    def status(self) -> StatusBar:
        return self.query_one("#status", StatusBar)

    def on_mount(self) -> None:
        self.query_one("#search", Input).display = False
        self.query_one("#message", Input).disabled = True
        self._set_title()
        self.friend_list.focus()
        self.status.pending = self.outbox.pending_count
        self.set_interval(30.0, self._refresh_times)
        self.friends_loop()
        self.sender_loop()

    def _refresh_times(self) -> None:
        # Redraw only: relative times ("5 minutes ago") move on. No I/O here.
        self.chat_log.refresh_times()
        self.friend_list.redraw()

    def _set_title(self) -> None:
        title = self.query_one("#chat-title", Static)
        if self.open_peer is None:
            title.update(plain(" No chat open"))
            return
        friend = self.friend_list.friends.get(self.open_peer)
        label = friend.label if friend else self.open_peer
        title.update(plain(f" Chat with {label} (@{self.open_peer})", style="bold"))

    # -- the loops (workers) -------------------------------------------------------
    async def _handle_failure(self, exc: Exception, backoff: Backoff) -> bool:
        """Back off after a failure; False when the loop must stop (signed out)."""
        if isinstance(exc, ApiError) and exc.status == 401:
            self.post_message(SessionExpired())
            return False
        delay = backoff.next_delay()
        self.connection.failed(delay)
        await self.connection.pause(delay)
        return True

    @work(exclusive=True, group="friends", exit_on_error=False)
    async def friends_loop(self) -> None:
        client = self.papp.client
        backoff = Backoff()
        cursor: str | None = None
        while True:
            try:
                if cursor is None:
                    if not self.session.display_name:
                        me = await client.me()
                        self.session = me
                        self.status.display_name = me.display_name
                    friends = await client.friends()
                    self.connection.ok()
                    self.post_message(FriendsLoaded(friends))
                    updates = await client.updates()
                    cursor = updates.cursor
                    self.post_message(FriendsChanged(updates.changed, initial=True))
                else:
                    started = time.monotonic()
                    updates = await client.updates(since=cursor, wait=POLL_WAIT)
                    cursor = updates.cursor or cursor
                    self.connection.ok()
                    if updates.changed:
                        self.post_message(FriendsChanged(updates.changed))
                    elif time.monotonic() - started < MIN_POLL_INTERVAL:
                        await asyncio.sleep(MIN_POLL_INTERVAL)
                backoff.reset()
            except (ApiError, ServerUnreachable) as exc:
                if isinstance(exc, ApiError) and exc.status == 400:
                    cursor = None  # a cursor the server no longer understands: start over
                if not await self._handle_failure(exc, backoff):
                    return

    @work(exclusive=True, group="chat", exit_on_error=False)
    async def chat_loop(self, peer: str) -> None:
        client = self.papp.client
        backoff = Backoff()
        after: int | None = None
        while True:
            try:
                if after is None:
                    page = await client.history(peer, limit=PAGE)
                    after = max((int(m["id"]) for m in page.messages), default=0)
                    self.connection.ok()
                    self.post_message(HistoryLoadedMsg(peer, page.messages, page.has_more))
                else:
                    started = time.monotonic()
                    page = await client.history(peer, after_id=after, wait=POLL_WAIT, limit=500)
                    self.connection.ok()
                    if page.messages:
                        after = max(after, *(int(m["id"]) for m in page.messages))
                        self.post_message(MessagesArrived(peer, page.messages))
                    elif not page.has_more and time.monotonic() - started < MIN_POLL_INTERVAL:
                        await asyncio.sleep(MIN_POLL_INTERVAL)
                # The chat is on screen: what it shows is read.
                if after and self._last_marked.get(peer, 0) < after:
                    unread = await client.mark_read(peer, after)
                    self._last_marked[peer] = after
                    self.post_message(MarkedRead(peer, unread))
                backoff.reset()
            except (ApiError, ServerUnreachable) as exc:
                if isinstance(exc, ApiError) and exc.status in (403, 404):
                    self.chat_log.placeholder = describe(exc)
                    self.chat_log.set_history([], False)
                    return
                if not await self._handle_failure(exc, backoff):
                    return

    @work(exclusive=True, group="outbox", exit_on_error=False)
    async def sender_loop(self) -> None:
        client = self.papp.client
        backoff = Backoff()
        while True:
            item = self.outbox.next_to_send()
            if item is None:
                self._outbox_wakeup.clear()
                await self._outbox_wakeup.wait()
                continue
            try:
                self.outbox.attempted(item.client_id)
                sent = await client.send(item.to, item.text, item.client_id)
            except ApiError as exc:
                if exc.status == 401:
                    self.post_message(SessionExpired())
                    return
                if exc.transient:
                    await self._handle_failure(exc, backoff)
                    continue
                self.outbox.fail(item.client_id, describe(exc))
                self.post_message(SendFailed(item, describe(exc)))
                continue
            except ServerUnreachable as exc:
                await self._handle_failure(exc, backoff)
                continue
            backoff.reset()
            self.connection.ok()
            self.outbox.remove(item.client_id)
            self.post_message(MessageSent(item, sent))

    @work(exclusive=True, group="older", exit_on_error=False)
    async def load_older(self, peer: str, before_id: int) -> None:
        try:
            page = await self.papp.client.history(peer, before_id=before_id, limit=PAGE)
        except (ApiError, ServerUnreachable) as exc:
            self.chat_log.loading_older = False
            self.notify(f"Could not load older messages: {describe(exc)}", markup=False)
            return
        self.post_message(OlderLoaded(peer, page.messages, page.has_more))

    @work(exclusive=True, group="older", exit_on_error=False)
    async def search_older(self, peer: str, term: str) -> None:
        """Load older pages until ``term`` is found or the conversation's start is reached."""
        log = self.chat_log
        while log.peer == peer and log.has_more_older and log.first_id is not None:
            self.status.note = "searching older messages…"
            try:
                page = await self.papp.client.history(
                    peer, before_id=log.first_id, limit=SEARCH_PAGE
                )
            except (ApiError, ServerUnreachable) as exc:
                self.status.note = ""
                self.notify(f"Search stopped: {describe(exc)}", markup=False)
                return
            log.add_older(page.messages, page.has_more)
            needle = term.casefold()
            found = [m for m in page.messages if needle in str(m.get("message", "")).casefold()]
            if found:
                self.post_message(SearchDone(peer, term, int(found[-1]["id"])))
                return
        self.post_message(SearchDone(peer, term, None))

    # -- worker results -------------------------------------------------------------
    def on_friends_loaded(self, message: FriendsLoaded) -> None:
        self.blocked = message.friends.blocked
        friends = [Friend.from_friend(f) for f in message.friends.friends]
        self.friend_list.set_friends(friends)
        self._set_title()

    def on_friends_changed(self, message: FriendsChanged) -> None:
        friends = self.friend_list
        for change in message.changed:
            username = str(change.get("username", ""))
            if not username or username in self.blocked:
                continue
            before, after = friends.apply_change(change)
            previous = before.unread if before else 0
            if username == self.open_peer:
                # On screen: the chat loop marks it read; do not announce it.
                if after.unread:
                    friends.friends[username] = replace(after, unread=0)
                continue
            if not message.initial and after.unread > previous:
                self.announce(after)
        friends.redraw()

    def announce(self, friend: Friend) -> None:
        count = friend.unread
        noun = "message" if count == 1 else "messages"
        self.notify(
            f"{friend.label}: {count} unread {noun} (Ctrl+N to open)",
            title="New message",
            markup=False,
            timeout=4,
        )
        self.app.bell()

    def on_history_loaded(self, message: HistoryLoadedMsg) -> None:
        if message.peer != self.open_peer:
            return
        self.chat_log.set_history(message.messages, message.has_more)
        self.chat_log.set_pending(self.outbox.for_peer(message.peer))

    def on_messages_arrived(self, message: MessagesArrived) -> None:
        if message.peer == self.open_peer:
            self.chat_log.add_messages(message.messages)
            self._update_friend_activity(message.peer, message.messages)

    def on_older_loaded(self, message: OlderLoaded) -> None:
        if message.peer == self.open_peer:
            self.chat_log.add_older(message.messages, message.has_more)

    def on_marked_read(self, message: MarkedRead) -> None:
        friend = self.friend_list.friends.get(message.peer)
        if friend is not None and friend.unread != message.unread:
            self.friend_list.friends[message.peer] = replace(friend, unread=message.unread)
            self.friend_list.redraw()

    def on_message_sent(self, message: MessageSent) -> None:
        self.status.pending = self.outbox.pending_count
        item, sent = message.item, message.sent
        stored = {
            "id": sent.id,
            "author": self.me,
            "message": item.text,
            "date_sent": sent.date_sent if sent.date_sent is not None else int(item.created),
            "client_id": item.client_id,
        }
        if item.to == self.open_peer:
            self.chat_log.set_pending(self.outbox.for_peer(item.to))
            self.chat_log.add_messages([stored])
        self._update_friend_activity(item.to, [stored])

    def on_send_failed(self, message: SendFailed) -> None:
        self.status.pending = self.outbox.pending_count
        if message.item.to == self.open_peer:
            self.chat_log.set_pending(self.outbox.for_peer(message.item.to))
        self.notify(
            f"Not sent to {message.item.to}: {message.reason}", severity="error", markup=False
        )

    def on_connection_changed(self, message: ConnectionChanged) -> None:
        self.status.set_state(message.state, message.retry_at)

    def on_session_expired(self, message: SessionExpired) -> None:
        self.workers.cancel_group(self, "friends")
        self.workers.cancel_group(self, "chat")
        self.workers.cancel_group(self, "outbox")
        self.papp.session_expired()

    def on_search_done(self, message: SearchDone) -> None:
        self.status.note = ""
        if message.peer != self.open_peer or message.term != self._search_term:
            return
        self._show_match(message.found)

    def _update_friend_activity(self, peer: str, messages: list[dict[str, Any]]) -> None:
        if not messages:
            return
        newest = max(messages, key=lambda m: int(m["id"]))
        friend = self.friend_list.friends.get(peer) or Friend(username=peer)
        if int(newest["id"]) >= friend.last_id:
            self.friend_list.friends[peer] = replace(
                friend, last_id=int(newest["id"]), last_activity=newest.get("date_sent")
            )
            self.friend_list.redraw()

    # -- user actions ---------------------------------------------------------------
    @on(OptionList.OptionSelected, "#friends")
    def _friend_chosen(self, event: OptionList.OptionSelected) -> None:
        if event.option.id:
            self.open_chat(event.option.id)

    def open_chat(self, peer: str) -> None:
        message_input = self.query_one("#message", Input)
        message_input.disabled = False
        if peer != self.open_peer:
            self.open_peer = peer
            self.friend_list.open_peer = peer
            friend = self.friend_list.friends.get(peer)
            if friend is not None and friend.unread:
                # Shown at once; the chat loop tells the server right after loading.
                self.friend_list.friends[peer] = replace(friend, unread=0)
            self.friend_list.highlight(peer)
            self.friend_list.redraw()
            self._close_search()
            self.chat_log.open(peer, friend.label if friend else peer)
            self.chat_log.set_pending(self.outbox.for_peer(peer))
            self._set_title()
            self.chat_loop(peer)
        message_input.focus()

    @on(Input.Submitted, "#message")
    def _send(self, event: Input.Submitted) -> None:
        text = event.value
        if self.open_peer is None:
            self.notify("Choose a friend first.", markup=False)
            return
        if not text.strip():
            return
        if len(text) > MAX_MESSAGE:
            self.notify(f"Messages are at most {MAX_MESSAGE} characters.", markup=False)
            return
        self.outbox.add(self.open_peer, text)
        event.input.value = ""
        self.chat_log.set_pending(self.outbox.for_peer(self.open_peer))
        self.chat_log.scroll_to(
            y=self.chat_log.max_scroll_y, animate=False, immediate=True, force=True
        )
        self.status.pending = self.outbox.pending_count
        self._outbox_wakeup.set()

    def action_next_unread(self) -> None:
        peer = self.friend_list.next_unread(self.open_peer)
        if peer is None:
            self.notify("No unread messages.", markup=False, timeout=2)
            return
        self.open_chat(peer)

    def action_focus_friends(self) -> None:
        self.friend_list.focus()

    def action_escape(self) -> None:
        if self.query_one("#search", Input).display:
            self._close_search()
            self.query_one("#message", Input).focus()
        else:
            self.friend_list.focus()

    def action_older(self) -> None:
        log = self.chat_log
        if log.scroll_offset.y <= 0:
            log.request_older()
        else:
            log.scroll_page_up(animate=False)

    def action_newer(self) -> None:
        self.chat_log.scroll_page_down(animate=False)

    def on_chat_log_need_older(self, message: ChatLog.NeedOlder) -> None:
        if message.peer == self.open_peer:
            self.load_older(message.peer, message.before_id)

    def action_add_friend(self) -> None:
        def added(username: str | None) -> None:
            if username:
                self.notify(f"Added {username}.", markup=False, timeout=3)
                self.friends_loop()  # restart: reloads the list
                self.friend_list.friends.setdefault(username, Friend(username=username))
                self.open_chat(username.lower())

        self.app.push_screen(AddFriendDialog(), added)

    def action_block(self) -> None:
        if self.friend_list.has_focus or self.open_peer is None:
            peer = self.friend_list.highlighted_username
        else:
            peer = self.open_peer
        if peer is None:
            self.notify("Choose a friend to block first.", markup=False)
            return
        friend = self.friend_list.friends.get(peer)

        def blocked(username: str | None) -> None:
            if not username:
                return
            self.notify(f"Blocked {username}.", markup=False, timeout=3)
            self.blocked.append(username)
            self.friend_list.drop(username)
            if self.open_peer == username:
                self.open_peer = None
                self.friend_list.open_peer = None
                self.workers.cancel_group(self, "chat")
                self.chat_log.open("", "")
                self.chat_log.peer = None
                self.chat_log.placeholder = "Choose a friend on the left (Up/Down, Enter)."
                self.chat_log.set_history([], False)
                self.query_one("#message", Input).disabled = True
                self._set_title()
            self.friend_list.focus()
            self.friends_loop()

        self.app.push_screen(BlockDialog(peer, friend.label if friend else peer), blocked)

    def action_unblock(self) -> None:
        def unblocked(username: str | None) -> None:
            if username:
                self.notify(f"Unblocked {username}.", markup=False, timeout=3)
                if username in self.blocked:
                    self.blocked.remove(username)
                self.friends_loop()

        self.app.push_screen(UnblockDialog(list(self.blocked)), unblocked)

    # -- search -------------------------------------------------------------------
    def action_search(self) -> None:
        if self.open_peer is None:
            self.notify("Open a chat to search it.", markup=False)
            return
        search = self.query_one("#search", Input)
        search.display = True
        search.focus()

    def _close_search(self) -> None:
        search = self.query_one("#search", Input)
        search.display = False
        search.value = ""
        self._search_term = ""
        self._search_current = None
        self.status.note = ""
        if self.chat_log.search_term:
            self.chat_log.set_search("", None)

    @on(Input.Submitted, "#search")
    def _search(self, event: Input.Submitted) -> None:
        term = event.value.strip()
        if not term or self.open_peer is None:
            return
        if term != self._search_term:
            self._search_term = term
            self._search_current = None
        matches = self.chat_log.matches(term)
        if self._search_current is not None:
            matches = [i for i in matches if i < self._search_current]
        if matches:
            self._show_match(matches[-1])
        elif self.chat_log.has_more_older:
            self.search_older(self.open_peer, term)
        else:
            self._show_match(None)

    def _show_match(self, found: int | None) -> None:
        if found is None:
            where = "older" if self._search_current is not None else "in this chat"
            self.status.note = f"no {where} match for “{safe(self._search_term)}”"
            return
        self._search_current = found
        total = len(self.chat_log.matches(self._search_term))
        index = self.chat_log.matches(self._search_term).index(found) + 1
        self.status.note = f"match {index} of {total} loaded"
        self.chat_log.set_search(self._search_term, found)


def describe(exc: Exception) -> str:
    if isinstance(exc, ApiError):
        return safe(exc.message or exc.code)
    return safe(str(exc))
