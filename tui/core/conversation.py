"""The loaded part of one conversation: its messages by id, and what is known around them.

The sync core owns the open chat's :class:`Conversation`; the chat view reads it
(never writes it) and is told what changed by a
:class:`~tui.core.events.MessagesAdded` carrying a :class:`Merge`, so it can lay
out only the new messages and redraw only the changed ones.

What is loaded is always one contiguous run of the pair's messages: the newest
page and older pages before it, or a window opened around an old message (a
search match), which grows by older and newer pages until it meets the newest.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

from tui.client.models import Message


@dataclass(frozen=True)
class Merge:
    """What :meth:`Conversation.merge` changed: ``older`` went before what was loaded,
    ``newer`` after it; ``reordered`` when some fell in between (lay out again);
    ``updated`` are loaded messages that were edited or deleted (redraw in place)."""

    older: tuple[Message, ...] = ()
    newer: tuple[Message, ...] = ()
    reordered: bool = False
    updated: tuple[Message, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.older or self.newer or self.updated)


@dataclass
class Conversation:
    peer: str
    me: str
    messages: list[Message] = field(default_factory=list)
    has_more_older: bool = False
    has_more_newer: bool = False
    """A window around an old message: newer pages are not loaded yet."""
    loaded: bool = False
    """The first page has arrived (until then the view says "Loading…")."""
    first_unread_id: int | None = None
    """Where the "new" line goes: the first message that was unread when the chat opened."""
    unavailable: str = ""
    """Why the conversation cannot be shown (403/404), or empty."""
    rev: int = 0
    """The pair's revision this copy is current to (0: a server without revisions)."""
    window: int = 0
    """Counts :meth:`reset`: a page asked for before a reset belongs to another window
    (the core drops it, so what is loaded stays contiguous)."""
    _by_id: dict[int, Message] = field(default_factory=dict)

    @property
    def first_id(self) -> int | None:
        return self.messages[0].id if self.messages else None

    @property
    def last_id(self) -> int:
        return self.messages[-1].id if self.messages else 0

    def __contains__(self, message_id: int) -> bool:
        return message_id in self._by_id

    def get(self, message_id: int | None) -> Message | None:
        return None if message_id is None else self._by_id.get(message_id)

    def merge(
        self, messages: tuple[Message, ...] | list[Message], *, newer_page: bool = False
    ) -> Merge:
        """Add new messages and apply changes to loaded ones.

        While a window has newer pages to load, messages past its end are left for
        those pages (``newer_page`` says this *is* the next one), so what is loaded
        stays contiguous.
        """
        for message in messages:
            self.rev = max(self.rev, message.rev)
        updated = self._update([m for m in messages if m.id in self._by_id])
        fresh = sorted(
            {m.id: m for m in messages if m.id not in self._by_id}.values(), key=lambda m: m.id
        )
        if self.messages and self.has_more_newer and not newer_page:
            fresh = [m for m in fresh if m.id < self.messages[-1].id]
        if not fresh:
            return Merge(updated=updated)
        self._by_id.update((m.id, m) for m in fresh)
        if not self.messages:
            self.messages = fresh
            return Merge(newer=tuple(fresh), updated=updated)
        first, last = self.messages[0].id, self.messages[-1].id
        older = [m for m in fresh if m.id < first]
        newer = [m for m in fresh if m.id > last]
        if len(older) + len(newer) < len(fresh):
            self.messages = sorted([*self.messages, *fresh], key=lambda m: m.id)
            return Merge(tuple(older), tuple(newer), reordered=True, updated=updated)
        self.messages = [*older, *self.messages, *newer] if older else self.messages + newer
        return Merge(tuple(older), tuple(newer), updated=updated)

    def update_only(self, changed: list[Message]) -> tuple[Message, ...]:
        """Apply changes to loaded messages without moving ``rev`` (a reply to my own change:
        changes before it may not be loaded yet)."""
        return self._update([m for m in changed if m.id in self._by_id])

    def _update(self, changed: list[Message]) -> tuple[Message, ...]:
        updated = []
        for message in changed:
            current = self._by_id[message.id]
            if message.rev < current.rev or message == current:
                continue
            index = bisect.bisect_left(self.messages, message.id, key=lambda m: m.id)
            self.messages[index] = message
            self._by_id[message.id] = message
            updated.append(message)
        return tuple(updated)

    def reset(
        self, messages: tuple[Message, ...], has_more_older: bool, has_more_newer: bool
    ) -> None:
        """Replace what is loaded with a window (around a search match, or the newest page)."""
        self.window += 1
        self.messages = sorted(messages, key=lambda m: m.id)
        self._by_id = {m.id: m for m in self.messages}
        self.has_more_older = has_more_older
        self.has_more_newer = has_more_newer
        self.rev = max([self.rev, *(m.rev for m in messages)])

    def mark_first_unread(self, unread: int) -> None:
        """Put the "new" line before the ``unread`` newest messages of the peer."""
        if unread <= 0:
            self.first_unread_id = None
            return
        theirs = [m.id for m in self.messages if m.author.lower() != self.me]
        if theirs:
            self.first_unread_id = theirs[-unread] if unread <= len(theirs) else theirs[0]

    def my_last(self, before_id: int | None = None) -> Message | None:
        """My newest message that is not deleted (older than ``before_id``): to edit."""
        for message in reversed(self.messages):
            if before_id is not None and message.id >= before_id:
                continue
            if message.author.lower() == self.me and not message.deleted:
                return message
        return None

    def my_texts(self) -> list[str]:
        """What I sent in this chat, newest first, without repeats (for recall)."""
        seen: set[str] = set()
        texts = []
        for message in reversed(self.messages):
            mine = message.author.lower() == self.me and not message.deleted
            if mine and message.text not in seen:
                seen.add(message.text)
                texts.append(message.text)
        return texts
