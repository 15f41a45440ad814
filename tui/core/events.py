"""What the sync core publishes: typed changes that screens and widgets render.

Every store of the core publishes through the core's one :class:`Publisher`,
which calls the subscriber with one of these after the state changed; the
subscriber (the Textual app) only reads the core's state and redraws. Nothing
here carries a widget or a Textual type.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tui.client.models import Friend
from tui.core.connection import ConnectionState
from tui.core.conversation import Merge
from tui.core.outbox import OutboxItem


@dataclass(frozen=True)
class FriendsChanged:
    """The friend list changed; ``rose`` are friends whose unread count went up
    in a chat that is not open (worth a toast and a bell)."""

    rose: tuple[Friend, ...] = ()


@dataclass(frozen=True)
class ChatOpened:
    """The open chat changed to ``peer`` (None: no chat open). Its conversation is empty
    until :class:`ChatLoaded`."""

    peer: str | None


@dataclass(frozen=True)
class ChatLoaded:
    """The open chat's newest page arrived (or it is unavailable: see ``Conversation``)."""

    peer: str


@dataclass(frozen=True)
class MessagesAdded:
    peer: str
    merge: Merge


@dataclass(frozen=True)
class OutboxChanged:
    """Items were added, sent, refused or discarded; ``peers`` whose pending rows changed."""

    peers: frozenset[str]


@dataclass(frozen=True)
class SendRefused:
    """The server refused ``item`` for good; ``item.error`` says why (it stays in the
    outbox, marked failed, until it is retried or discarded)."""

    item: OutboxItem


@dataclass(frozen=True)
class ConnectionChanged:
    state: ConnectionState


@dataclass(frozen=True)
class SessionEnded:
    """The server no longer accepts our token, or the user signed out."""

    reason: str


@dataclass(frozen=True)
class TypingChanged:
    """``peer`` started or stopped typing (``SyncCore.is_typing``)."""

    peer: str


@dataclass(frozen=True)
class WindowMoved:
    """The open chat's loaded messages were replaced: by a window around an old message
    (a search match, the original of a reply: ``focus``), or by the newest page after a
    jump back from such a window (``focus`` None). Lay it out again."""

    peer: str
    focus: int | None


@dataclass(frozen=True)
class ProfileLoaded:
    """Who I am (display name) is known."""


Event = (
    FriendsChanged
    | ChatOpened
    | ChatLoaded
    | MessagesAdded
    | OutboxChanged
    | SendRefused
    | ConnectionChanged
    | SessionEnded
    | ProfileLoaded
    | TypingChanged
    | WindowMoved
)


class Publisher:
    """The one path from the core's stores to its subscribers."""

    def __init__(self) -> None:
        self._subscribers: list[Callable[[Event], None]] = []

    def subscribe(self, callback: Callable[[Event], None]) -> None:
        self._subscribers.append(callback)

    def publish(self, event: Event) -> None:
        for callback in list(self._subscribers):
            callback(event)
