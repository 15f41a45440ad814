"""Who I talk to: friends and their unread counts, message requests, blocks, typing.

:class:`Roster` owns the friend list as the feed reports it (:meth:`Roster.apply`)
and as my own intents change it (add, block, accept, …), the list's order
(:func:`friend_sort_key`), and who is typing: signs from the feed are shown for
``TYPING_SHOWN`` seconds, and my own typing is signalled at most every
``TYPING_EVERY`` seconds. Every change is published as
:class:`~tui.core.events.FriendsChanged` or :class:`~tui.core.events.TypingChanged`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

from tui.client.http import ApiError, PairchatClient, ServerUnreachable
from tui.client.models import Change, Friend, FriendList, Message
from tui.core.events import FriendsChanged, Publisher, TypingChanged
from tui.core.prefs import Prefs
from tui.core.tasks import Tasks

TYPING_SHOWN = 6.0
"""Seconds "bob is typing…" stays after the last sign of it (the server sends one every ~3 s)."""
TYPING_EVERY = 3.0
"""Seconds between two typing signals sent while composing."""


def friend_sort_key(friend: Friend) -> tuple[int, float, str]:
    """Most recent activity first; friends never talked to last, by name."""
    try:
        when = float(friend.last_activity) if friend.last_activity is not None else None
    except (TypeError, ValueError):
        when = None
    label = (friend.display_name or friend.username).casefold()
    return (1, 0.0, label) if when is None else (0, -when, label)


@dataclass(frozen=True)
class Applied:
    """What :meth:`Roster.apply` found beyond the list itself (the feed acts on it)."""

    erased: frozenset[str] = frozenset()
    """Pairs an operator erased (their ids started again): an open one loads again."""
    unread: frozenset[str] = frozenset()
    """Pairs with unread messages: a read marker held back for them may go now."""


class Roster:
    def __init__(
        self,
        client: PairchatClient,
        events: Publisher,
        tasks: Tasks,
        prefs: Prefs,
        features: set[str],
    ) -> None:
        self.client = client
        self.events = events
        self.tasks = tasks
        self.prefs = prefs
        self.features = features
        """Shared with the core: "typing" leaves it when the server has no such route."""
        self.friends: dict[str, Friend] = {}
        self.requests: dict[str, Friend] = {}
        """Conversations started by people who are not my friends (no toast, no bell)."""
        self.blocked: set[str] = set()
        self.typing_until: dict[str, float] = {}
        """Peers shown as typing, until this ``time.monotonic()``."""
        self._typing_sent: dict[str, float] = {}

    # -- reading -------------------------------------------------------------------------
    def get(self, username: str) -> Friend | None:
        """A friend or a message request."""
        return self.friends.get(username) or self.requests.get(username)

    def ordered(self) -> list[Friend]:
        return sorted(self.friends.values(), key=friend_sort_key)

    def label(self, username: str) -> str:
        friend = self.get(username)
        return (friend.display_name if friend else "") or username

    def next_unread(self, current: str | None) -> str | None:
        """The next friend with unread messages, in list order, after ``current``."""
        ordered = self.ordered()
        names = [f.username for f in ordered]
        start = names.index(current) + 1 if current in names else 0
        for friend in ordered[start:] + ordered[:start]:
            if friend.unread and friend.username != current:
                return friend.username
        return None

    # -- what the server says ------------------------------------------------------------
    def set_listing(self, listing: FriendList) -> None:
        self.blocked = set(listing.blocked)
        self.friends = {f.username: f for f in listing.friends}
        self.requests = {f.username: f for f in listing.requests}
        self.events.publish(FriendsChanged())

    def apply(
        self, changes: tuple[Change, ...], *, open_peer: str | None, initial: bool = False
    ) -> Applied:
        """Apply the feed's changes; friends whose unread count rose in a chat that is not
        ``open_peer`` (nor muted) are announced with the :class:`FriendsChanged`."""
        rose: list[Friend] = []
        erased_pairs: set[str] = set()
        unread: set[str] = set()
        for change in changes:
            name = change.username
            if change.blocked:
                self.blocked.add(name)
            else:
                self.blocked.discard(name)
            if change.typing:
                self.typing_until[name] = time.monotonic() + TYPING_SHOWN
                self.events.publish(TypingChanged(name))
            before = self.get(name) or Friend(username=name)
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
                (self.requests, self.friends) if change.request else (self.friends, self.requests)
            )
            other.pop(name, None)
            home[name] = after
            if erased:
                erased_pairs.add(name)
            if (
                not initial
                and not change.request
                and after.unread > before.unread
                and name != open_peer
                and name not in self.prefs.muted
            ):
                rose.append(after)
            if after.unread:
                unread.add(name)
        self.events.publish(FriendsChanged(tuple(rose)))
        return Applied(frozenset(erased_pairs), frozenset(unread))

    def set_unread(self, username: str, unread: int) -> None:
        """The server's count after a read marker."""
        current = self.friends.get(username)
        if current is not None and current.unread != unread:
            self.friends[username] = replace(current, unread=unread)
            self.events.publish(FriendsChanged())

    def delivered(self, peer: str, message: Message, created: float) -> None:
        """My message to ``peer`` was stored: it is their newest activity."""
        friend = self.friends.get(peer) or Friend(username=peer)
        if message.id >= friend.last_id:
            when = message.date_sent if message.date_sent is not None else int(created)
            self.friends[peer] = replace(friend, last_id=message.id, last_activity=when)
            self.events.publish(FriendsChanged())

    # -- intents ---------------------------------------------------------------------------
    async def add_friend(self, username: str) -> None:
        await self.client.add_friend(username)
        name = username.lower()
        self.friends.setdefault(name, Friend(username=name))
        self.events.publish(FriendsChanged())

    async def block(self, username: str) -> None:
        await self.client.block_friend(username)
        self.blocked.add(username)
        self.friends.pop(username, None)

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

    # -- typing ----------------------------------------------------------------------------
    def is_typing(self, peer: str) -> bool:
        return self.typing_until.get(peer, 0.0) > time.monotonic()

    def composing(self, peer: str) -> None:
        """I am typing in ``peer``'s chat: tell them, at most every few seconds."""
        now = time.monotonic()
        if "typing" not in self.features or now - self._typing_sent.get(peer, -1e9) < TYPING_EVERY:
            return
        self._typing_sent[peer] = now
        self.tasks.spawn(self._send_typing(peer))

    def sent_to(self, peer: str) -> None:
        """A message to ``peer`` was queued: the next key typed signals typing again."""
        self._typing_sent.pop(peer, None)

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
