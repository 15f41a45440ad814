"""The headless sync core: one facade over the stores that hold what the client knows.

One :class:`SyncCore` per signed-in user. Screens and widgets read it and call
its intents (:meth:`~SyncCore.open_chat`, :meth:`~SyncCore.send`,
:meth:`~SyncCore.seen`, …); each is delegated to the store that owns that
concern, one module each:

- :mod:`~tui.core.friends` (``Roster``): friends, requests, blocks, typing, the list's order;
- :mod:`~tui.core.open_chat` (``OpenChat``): the open conversation, its pages and search;
- :mod:`~tui.core.markers` (``ReadMarkers``): what was seen, and the marker loop;
- :mod:`~tui.core.sending` (``Sender``): the send/edit/delete intents and the sender loop;
- :mod:`~tui.core.feed` (``Feed``): the feed's cursor and the feed loop;
- :mod:`~tui.core.account` (``Account``): the session, account settings, mute, signing out;
- :mod:`~tui.core.drafts`, :mod:`~tui.core.outbox`, :mod:`~tui.core.prefs` (files on disk),
  :mod:`~tui.core.connection` (reachable or not), :mod:`~tui.core.tasks` (the task group).

Every store publishes through the one :class:`~tui.core.events.Publisher` whose
subscribers are called with a typed event of :mod:`tui.core.events`. It imports
no Textual: it can be driven by a test, a script, or another front end.

:meth:`SyncCore.run` runs three loops in one task group until the session ends:

- the **feed loop** holds the client's only held request: the event stream
  ``GET /events``, or the long-poll ``GET /updates`` with ``wait`` where the
  server has no stream or a proxy buffers it (:mod:`tui.core.feed`). The feed
  reports every conversation that changed, including the open one; when it says
  the open chat has a newer ``last_id`` than what is loaded, the loop fetches
  ``get_message_history`` with ``after_id`` (no ``wait``). So a signed-in client
  holds one request on the server, not one per open chat;
- the **sender** drains the outbox in order, each message with its ``client_id``
  so a retry after a lost reply stores nothing twice;
- the **marker** tells the server what was read: only messages that were on
  screen in the focused chat (the view reports them with :meth:`SyncCore.seen`).

Failures go through :class:`~tui.core.connection.Connection`: unreachable →
a probe about every second (the stream's first event comes at once; the long-poll
asks with ``wait=0`` until it gets through),
server trouble → exponential backoff; a 401 ends the session.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tui.client.http import PairchatClient
from tui.client.models import Friend, Message, Session
from tui.core.account import Account
from tui.core.connection import Connection
from tui.core.conversation import Conversation
from tui.core.drafts import Drafts
from tui.core.events import ConnectionChanged, Event, FriendsChanged, Publisher, SessionEnded
from tui.core.feed import FIRST_EVENT_TIMEOUT, POLL_WAIT, Feed
from tui.core.friends import Roster, friend_sort_key
from tui.core.markers import ReadMarkers
from tui.core.open_chat import PAGE, SEARCH_PAGE, OpenChat
from tui.core.outbox import Outbox, OutboxItem
from tui.core.prefs import Prefs
from tui.core.sending import MAX_MESSAGE, Sender
from tui.core.tasks import SessionOver, Tasks

__all__ = ["MAX_MESSAGE", "PAGE", "POLL_WAIT", "SEARCH_PAGE", "SyncCore", "friend_sort_key"]


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
        first_event_timeout: float = FIRST_EVENT_TIMEOUT,
    ) -> None:
        self.client = client
        self.me = session.username.lower()
        self.outbox = outbox
        self.drafts = drafts
        self.prefs = prefs
        self.events = Publisher()
        self.connection = Connection(lambda state: self.events.publish(ConnectionChanged(state)))
        self.tasks = Tasks(self.connection)
        self.features: set[str] = {"typing", "search"}
        """Optional routes the server has: a 404 removes one (an older server), and the
        client falls back (no typing signals; search by fetching pages)."""
        self.account = Account(client, session, self.events, prefs, drafts)
        self.roster = Roster(client, self.events, self.tasks, prefs, self.features)
        self.opened = OpenChat(
            client,
            self.me,
            self.events,
            self.connection,
            self.tasks,
            self.roster,
            drafts,
            self.features,
        )
        self.markers = ReadMarkers(client, self.connection, self.tasks, self.roster)
        self.sender = Sender(
            client,
            self.me,
            outbox,
            self.events,
            self.connection,
            self.tasks,
            self.roster,
            self.opened,
        )
        self.feed = Feed(
            client,
            self.connection,
            self.tasks,
            self.account,
            self.roster,
            self.opened,
            self.markers,
            poll_wait,
            first_event_timeout,
        )

    # -- running ---------------------------------------------------------------------------
    async def run(self) -> None:
        """Run the loops until the session ends (a 401 or :meth:`sign_out`) or cancellation."""
        try:
            async with asyncio.TaskGroup() as group:
                self.tasks.group = group
                group.create_task(self.feed.loop())
                group.create_task(self.sender.loop())
                group.create_task(self.markers.loop())
        except* SessionOver:
            self.events.publish(SessionEnded("Your session has ended. Please sign in again."))
        finally:
            self.tasks.group = None
            self.drafts.save()

    def subscribe(self, callback: Callable[[Event], None]) -> None:
        self.events.subscribe(callback)

    # -- the state, read by the screens and widgets ------------------------------------------
    @property
    def session(self) -> Session:
        return self.account.session

    @property
    def friends(self) -> dict[str, Friend]:
        return self.roster.friends

    @property
    def requests(self) -> dict[str, Friend]:
        """Conversations started by people who are not my friends (no toast, no bell)."""
        return self.roster.requests

    @property
    def blocked(self) -> set[str]:
        return self.roster.blocked

    @property
    def typing_until(self) -> dict[str, float]:
        """Peers shown as typing, until this ``time.monotonic()``."""
        return self.roster.typing_until

    @property
    def live_updates(self) -> str:
        """How changes reach this client, in words: "event stream", or "long-poll (why)"."""
        return self.feed.live_updates

    @property
    def chat(self) -> Conversation | None:
        return self.opened.chat

    @property
    def open_peer(self) -> str | None:
        return self.opened.peer

    def ordered_friends(self) -> list[Friend]:
        return self.roster.ordered()

    def label(self, username: str) -> str:
        return self.roster.label(username)

    def pending_for(self, peer: str) -> list[OutboxItem]:
        return self.outbox.for_peer(peer)

    def next_unread(self) -> str | None:
        """The next friend with unread messages, in list order, after the open chat."""
        return self.roster.next_unread(self.open_peer)

    # -- the open chat -----------------------------------------------------------------------
    def open_chat(self, peer: str) -> None:
        self.opened.open(peer)

    def close_chat(self) -> None:
        self.opened.close()

    async def load_older(self, peer: str) -> int:
        return await self.opened.load_older(peer)

    async def load_newer(self, peer: str) -> int:
        return await self.opened.load_newer(peer)

    async def react(self, peer: str, message_id: int, emoji: str) -> None:
        await self.opened.react(peer, message_id, emoji)

    async def show_message(self, peer: str, message_id: int) -> bool:
        return await self.opened.show_message(peer, message_id)

    async def show_newest(self, peer: str) -> bool:
        return await self.opened.show_newest(peer)

    async def search(
        self, peer: str, term: str, before_id: int | None, progress: Callable[[int], None]
    ) -> Message | None:
        return await self.opened.search(peer, term, before_id, progress)

    async def find(self, peer: str, term: str, before_id: int | None) -> Message | None:
        return await self.opened.find(peer, term, before_id)

    # -- typing and reading --------------------------------------------------------------------
    def is_typing(self, peer: str) -> bool:
        return self.roster.is_typing(peer)

    def composing(self, peer: str) -> None:
        self.roster.composing(peer)

    def typing_expired(self) -> list[str]:
        return self.roster.typing_expired()

    def seen(self, peer: str, message_id: int) -> None:
        self.markers.seen(peer, message_id)

    # -- sending -------------------------------------------------------------------------------
    def send(self, peer: str, text: str, reply_to: int | None = None) -> OutboxItem:
        return self.sender.send(peer, text, reply_to)

    def send_file(
        self, peer: str, path: str, caption: str = "", reply_to: int | None = None
    ) -> OutboxItem:
        return self.sender.send_file(peer, path, caption, reply_to)

    async def save_file(self, peer: str, message_id: int, folder: Path) -> Path:
        """Download the file of message ``message_id`` into ``folder``; where it landed."""
        return await self.client.download_file(peer, message_id, folder)

    def edit(self, peer: str, message_id: int, text: str) -> OutboxItem:
        return self.sender.edit(peer, message_id, text)

    def delete(self, peer: str, message_id: int) -> OutboxItem:
        return self.sender.delete(peer, message_id)

    def retry(self, client_id: str) -> None:
        self.sender.retry(client_id)

    def discard(self, client_id: str) -> OutboxItem | None:
        return self.sender.discard(client_id)

    # -- drafts and mute -----------------------------------------------------------------------
    def draft(self, peer: str) -> str:
        return self.drafts.get(peer)

    def set_draft(self, peer: str, text: str) -> None:
        self.drafts.set(peer, text)
        self.drafts.save_soon()

    def flush_drafts(self) -> None:
        self.drafts.save()

    def is_muted(self, peer: str) -> bool:
        return self.account.is_muted(peer)

    def toggle_mute(self, peer: str) -> bool:
        return self.account.toggle_mute(peer)

    # -- friends -------------------------------------------------------------------------------
    async def add_friend(self, username: str) -> None:
        await self.roster.add_friend(username)

    async def block(self, username: str) -> None:
        await self.roster.block(username)
        if self.open_peer == username:
            self.opened.close()
        self.events.publish(FriendsChanged())

    async def unblock(self, username: str) -> None:
        await self.roster.unblock(username)

    async def accept(self, username: str) -> None:
        await self.roster.accept(username)

    async def decline(self, username: str) -> None:
        await self.roster.decline(username)

    # -- the account ---------------------------------------------------------------------------
    async def change_settings(self, **values: bool) -> dict[str, Any]:
        return await self.account.change_settings(**values)

    def end_session(self, reason: str) -> None:
        self.account.end_session(reason)

    async def sign_out(self) -> bool:
        return await self.account.sign_out()
