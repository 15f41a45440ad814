"""Custom Textual messages: results that workers carry back to the screen and widgets.

Workers never touch widgets; they post one of these and the main screen's
handlers update the model and the view. Each carries plain data.
"""

from __future__ import annotations

from typing import Any

from textual.message import Message

from tui.api import Friends, Sent
from tui.outbox import OutboxItem


class FriendsLoaded(Message):
    """The whole friend list (``GET /friends``)."""

    def __init__(self, friends: Friends) -> None:
        super().__init__()
        self.friends = friends


class FriendsChanged(Message):
    """Changes from ``GET /updates``; ``initial`` for the first, full answer."""

    def __init__(self, changed: list[dict[str, Any]], initial: bool = False) -> None:
        super().__init__()
        self.changed = changed
        self.initial = initial


class HistoryLoaded(Message):
    """The newest page of ``peer``'s conversation, when the chat is opened."""

    def __init__(self, peer: str, messages: list[dict[str, Any]], has_more: bool) -> None:
        super().__init__()
        self.peer = peer
        self.messages = messages
        self.has_more = has_more


class MessagesArrived(Message):
    """Newer messages of ``peer``'s conversation (the chat loop's poll)."""

    def __init__(self, peer: str, messages: list[dict[str, Any]]) -> None:
        super().__init__()
        self.peer = peer
        self.messages = messages


class OlderLoaded(Message):
    """A page of older messages (scrollback or search)."""

    def __init__(self, peer: str, messages: list[dict[str, Any]], has_more: bool) -> None:
        super().__init__()
        self.peer = peer
        self.messages = messages
        self.has_more = has_more


class MarkedRead(Message):
    def __init__(self, peer: str, unread: int) -> None:
        super().__init__()
        self.peer = peer
        self.unread = unread


class MessageSent(Message):
    """The server stored an outbox item (``sent.duplicate`` if it already had it)."""

    def __init__(self, item: OutboxItem, sent: Sent) -> None:
        super().__init__()
        self.item = item
        self.sent = sent


class SendFailed(Message):
    """The server refused an outbox item for good (e.g. ``blocked``)."""

    def __init__(self, item: OutboxItem, reason: str) -> None:
        super().__init__()
        self.item = item
        self.reason = reason


class ConnectionChanged(Message):
    """``connected``, ``reconnecting`` (with ``retry_at``, monotonic) or ``offline``."""

    def __init__(self, state: str, retry_at: float | None = None) -> None:
        super().__init__()
        self.state = state
        self.retry_at = retry_at


class SessionExpired(Message):
    """The server no longer accepts our token (401): sign in again."""


class SearchDone(Message):
    def __init__(self, peer: str, term: str, found: int | None) -> None:
        super().__init__()
        self.peer = peer
        self.term = term
        self.found = found
