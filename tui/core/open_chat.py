"""The open chat: which conversation is shown, and loading its messages.

:class:`OpenChat` owns the open :class:`~tui.core.conversation.Conversation`
(one at a time): its newest page when it opens (enough of its tail to reach the
first unread message), older pages on demand, a window around an old message (a
search match, a reply's original) that grows by newer pages until it meets the
newest, the jump back to the newest, catching up with what the feed announced
(:meth:`OpenChat.catch_up`), and search through the whole history. A page that
arrives for a chat or window that is no longer shown is dropped, so what is loaded
stays one contiguous run. Changes are published as ``ChatOpened``, ``ChatLoaded``,
``MessagesAdded`` and ``WindowMoved``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from tui.client.errors import describe
from tui.client.http import ApiError, PairchatClient, ServerUnreachable
from tui.client.models import Message
from tui.core.connection import Connection
from tui.core.conversation import Conversation, Merge
from tui.core.drafts import Drafts
from tui.core.events import ChatLoaded, ChatOpened, MessagesAdded, Publisher, WindowMoved
from tui.core.friends import Roster
from tui.core.tasks import Tasks

PAGE = 100
"""Messages fetched when a chat opens and per scrollback page."""
UNREAD_PAGE = 300
"""At most this many messages are fetched to open a chat, to reach where its unread start."""
SEARCH_PAGE = 1000
"""Messages per request while searching back through a conversation (the server's maximum)."""
CATCH_UP_PAGE = 500


class OpenChat:
    def __init__(
        self,
        client: PairchatClient,
        me: str,
        events: Publisher,
        connection: Connection,
        tasks: Tasks,
        roster: Roster,
        drafts: Drafts,
        features: set[str],
    ) -> None:
        self.client = client
        self.me = me
        self.events = events
        self.connection = connection
        self.tasks = tasks
        self.roster = roster
        self.drafts = drafts
        """Saved on every switch of chats."""
        self.features = features
        """Shared with the core: "search" leaves it when the server has no such route."""
        self.chat: Conversation | None = None
        self._tail_task: asyncio.Task[None] | None = None

    @property
    def peer(self) -> str | None:
        return self.chat.peer if self.chat is not None else None

    # -- which chat ------------------------------------------------------------------------
    def open(self, peer: str) -> None:
        """Show ``peer``'s conversation: an empty one at once, its newest page when it arrives."""
        if self.chat is not None and self.chat.peer == peer:
            return
        self.drafts.save()
        self._load(peer)

    def reopen(self, peer: str) -> None:
        """Load the open chat again from scratch (its pair was erased and restarted)."""
        self._load(peer)

    def _load(self, peer: str) -> None:
        if self._tail_task is not None:
            self._tail_task.cancel()
        self.chat = Conversation(peer, self.me)
        self.events.publish(ChatOpened(peer))
        self._tail_task = self.tasks.spawn(self._load_tail(self.chat))

    def close(self) -> None:
        if self.chat is None:
            return
        self.drafts.save()
        if self._tail_task is not None:
            self._tail_task.cancel()
        self.chat = None
        self.events.publish(ChatOpened(None))

    # -- loading -------------------------------------------------------------------------
    async def _load_tail(self, chat: Conversation) -> None:
        friend = self.roster.friends.get(chat.peer)
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
                await self.catch_up()  # anything the feed announced while the page was on its way
            return

    async def catch_up(self) -> None:
        """Fetch what the feed says the open chat has and the view has not.

        With revisions (``after_rev``): new messages, edits and deletes of old ones
        alike. A server without them is asked with ``after_id`` (new messages only).
        """
        chat = self.chat
        while chat is not None and chat.loaded and not chat.unavailable and chat is self.chat:
            friend = self.roster.get(chat.peer)
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

    def delivered(self, peer: str, message: Message) -> None:
        """My message to ``peer`` was stored: show it if their chat is open and loaded."""
        chat = self.chat
        if chat is not None and chat.peer == peer and chat.loaded:
            self._merge(chat, [message])

    def _merge(self, chat: Conversation, messages: tuple[Message, ...] | list[Message]) -> Merge:
        merge = chat.merge(messages)
        if merge:
            self.events.publish(MessagesAdded(chat.peer, merge))
        return merge

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
                await self.catch_up()
        return len(merge.newer)

    async def react(self, peer: str, message_id: int, emoji: str) -> None:
        """Set my reaction to ``message_id`` (``""``: remove it) and show the message as the
        server now has it. The chat's ``rev`` stays: changes before this one may not be
        loaded yet, and the feed's new revision makes ``catch_up`` fetch them all."""
        message = await self.client.react(peer, message_id, emoji)
        self.connection.ok()
        chat = self.chat
        if chat is None or chat.peer != peer or message.id not in chat:
            return
        updated = chat.update_only([message])
        if updated:
            self.events.publish(MessagesAdded(peer, Merge(updated=updated)))

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
            await self.catch_up()  # anything that arrived while the page was on its way
        return True

    # -- search --------------------------------------------------------------------------
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
