"""The loaded part of one conversation: its messages by id, and what is known around them.

The sync core owns the open chat's :class:`Conversation`; the chat view reads it
(never writes it) and is told what was added by a
:class:`~tui.core.events.MessagesAdded` carrying a :class:`Merge`, so it can lay
out only the new messages.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tui.client.models import Message


@dataclass(frozen=True)
class Merge:
    """What :meth:`Conversation.merge` added: ``older`` went before what was loaded,
    ``newer`` after it; ``reordered`` when some fell in between (lay out again)."""

    older: tuple[Message, ...] = ()
    newer: tuple[Message, ...] = ()
    reordered: bool = False

    def __bool__(self) -> bool:
        return bool(self.older or self.newer)


@dataclass
class Conversation:
    peer: str
    me: str
    messages: list[Message] = field(default_factory=list)
    has_more_older: bool = False
    loaded: bool = False
    """The newest page has arrived (until then the view says "Loading…")."""
    first_unread_id: int | None = None
    """Where the "new" line goes: the first message that was unread when the chat opened."""
    unavailable: str = ""
    """Why the conversation cannot be shown (403/404), or empty."""
    _ids: set[int] = field(default_factory=set)

    @property
    def first_id(self) -> int | None:
        return self.messages[0].id if self.messages else None

    @property
    def last_id(self) -> int:
        return self.messages[-1].id if self.messages else 0

    def __contains__(self, message_id: int) -> bool:
        return message_id in self._ids

    def merge(self, messages: tuple[Message, ...] | list[Message]) -> Merge:
        fresh = sorted(
            {m.id: m for m in messages if m.id not in self._ids}.values(), key=lambda m: m.id
        )
        if not fresh:
            return Merge()
        self._ids.update(m.id for m in fresh)
        if not self.messages:
            self.messages = fresh
            return Merge(newer=tuple(fresh))
        first, last = self.messages[0].id, self.messages[-1].id
        older = [m for m in fresh if m.id < first]
        newer = [m for m in fresh if m.id > last]
        if len(older) + len(newer) < len(fresh):
            self.messages = sorted([*self.messages, *fresh], key=lambda m: m.id)
            return Merge(tuple(older), tuple(newer), reordered=True)
        self.messages = [*older, *self.messages, *newer] if older else self.messages + newer
        return Merge(tuple(older), tuple(newer))

    def mark_first_unread(self, unread: int) -> None:
        """Put the "new" line before the ``unread`` newest messages of the peer."""
        if unread <= 0:
            self.first_unread_id = None
            return
        theirs = [m.id for m in self.messages if m.author.lower() != self.me]
        if theirs:
            self.first_unread_id = theirs[-unread] if unread <= len(theirs) else theirs[0]

    def my_texts(self) -> list[str]:
        """What I sent in this chat, newest first, without repeats (for ↑ recall)."""
        seen: set[str] = set()
        texts = []
        for message in reversed(self.messages):
            if message.author.lower() == self.me and message.text not in seen:
                seen.add(message.text)
                texts.append(message.text)
        return texts
