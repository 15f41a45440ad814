"""The friend list (left pane): display name, unread count, last activity, one friend a row pair.

It draws the core's friends in the core's order (most recent activity first)
and keeps the cursor on the same person across redraws. Names are user data:
drawn through :func:`~tui.text.one_line` (never markup, visible controls, stable
widths) and cut to the pane with an ellipsis, so a long or CJK name takes its two
rows like any other. Unread counts are written as "(3)" and in bold: readable
without colour.

Typing here starts a message: a printable key that is none of the list's keys
opens the highlighted friend's chat and goes into its message box (the screen's
``start_message``), so text typed with the list focused is neither dropped nor
taken as commands (a bare ``m`` used to mute the highlighted chat mid-sentence).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from functools import lru_cache

import icu
from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from tui.client.models import Friend
from tui.formatting import Clock, short_activity, system_clock
from tui.text import fit, one_line

OPEN_MARKER = "\u203a"
REQUESTS = "__requests__"
"""The option id of the "Requests (N)" row (no username can be this)."""


@lru_cache(maxsize=4096)
def _reads_as(name: str) -> str:
    """What a name reads as: folded, then its Unicode confusable skeleton (UTS #39)."""
    folded = " ".join(unicodedata.normalize("NFKC", name).casefold().split())
    return str(icu.SpoofChecker().getSkeleton(0, folded)).casefold()


def close_names(friends: list[Friend]) -> set[str]:
    """The friends whose shown name reads like another friend's shown name or username:
    their row says whose it is ("Alice (@alice)"), so neither can pass for the other."""
    seen: dict[str, set[str]] = {}
    for friend in friends:
        for name in {friend.display_name or friend.username, friend.username}:
            seen.setdefault(_reads_as(name), set()).add(friend.username)
    return {
        friend.username
        for friend in friends
        if friend.display_name and len(seen[_reads_as(friend.display_name)]) > 1
    }


class FriendList(OptionList):
    """Keyboard-first list of friends; Enter opens the chat."""

    BINDINGS = [
        Binding("enter", "select", "Open chat", id="friends.open"),
        # Shown here (they act on the highlighted friend); the screen runs them.
        Binding("f2", "screen.add_friend", "Add friend", id="friends.add"),
        Binding("f4", "screen.block", "Block", id="friends.block"),
        Binding("f6", "screen.unblock", "Unblock", id="friends.unblock"),
        Binding(
            "f3",
            "screen.toggle_mute",
            "Mute",
            tooltip="Mute or unmute the highlighted chat: no bell, toast or notification",
            id="friends.mute",
        ),
        Binding("question_mark", "app.help", "Help", show=False, id="friends.help"),
    ]

    def __init__(
        self,
        *,
        clock: Clock = system_clock,
        start_message: Callable[[str, str], None] | None = None,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.clock = clock
        self.start_message = start_message
        """Called with (friend, text) for text typed in the list."""
        self.friends: dict[str, Friend] = {}
        self.open_peer: str | None = None
        self.muted: frozenset[str] = frozenset()
        self.requests = 0
        self._order: list[Friend] = []
        self._close: set[str] = set()

    def show(
        self,
        ordered: list[Friend],
        open_peer: str | None,
        muted: frozenset[str] = frozenset(),
        requests: int = 0,
    ) -> None:
        """Draw ``ordered`` (the core's order), marking ``open_peer`` and the muted chats;
        ``requests`` conversations from people who are not friends get one row at the end."""
        self._order = ordered
        self.friends = {friend.username: friend for friend in ordered}
        self.open_peer = open_peer
        self.muted = muted
        self.requests = requests
        self._close = close_names(ordered)
        self.redraw()

    def whose(self, username: str, label: str) -> str:
        """``label`` for a toast or an alert about ``username``: with whose it is
        ("Alice (@alice)") when another friend's name reads alike, as in the list."""
        return f"{label} (@{username})" if username in self._close else label

    def _prompt(self, friend: Friend, width: int) -> Text:
        marker = f"{OPEN_MARKER} " if friend.username == self.open_peer else "  "
        count = f" ({friend.unread})" if friend.unread else ""
        room = width - 2 - len(count)
        name = fit(one_line(friend.display_name or friend.username), room)
        if friend.username in self._close:  # the name is cut, never whose it is
            owner = f" (@{friend.username})"
            name = fit(one_line(friend.display_name), max(1, room - len(owner))) + owner
        line = Text(no_wrap=True, overflow="ellipsis")
        line.append(marker)
        line.append(name, style="bold" if friend.unread else "")
        line.append(count, style="bold")
        second = f"  @{friend.username}"
        activity = short_activity(friend.last_activity, self.clock)
        if activity:
            second += f" \u00b7 {activity}"
        if friend.username in self.muted:
            second += " \u00b7 muted"
        line.append("\n")
        line.append(fit(second, width), style="dim")
        return line

    def redraw(self) -> None:
        highlighted = self.highlighted_option
        keep = highlighted.id if highlighted is not None else None
        width = self.scrollable_content_region.width or 24
        options = [Option(self._prompt(f, width), id=f.username) for f in self._order]
        if self.requests:
            # Each line cut to the column (a Text with "\n" wraps its lines on its own).
            label = Text(no_wrap=True, overflow="ellipsis")
            label.append(fit(f"  Requests ({self.requests})", width), style="bold")
            notes = ("  from people not in your list", "  not in your list", "  not friends")
            note = next((n for n in notes if len(n) <= width), notes[-1])
            label.append("\n")
            label.append(fit(note, width), style="dim")
            options.append(Option(label, id=REQUESTS))
        self.set_options(options)
        if not options:
            return
        index = 0
        if keep is not None and (keep in self.friends or (keep == REQUESTS and self.requests)):
            index = self.get_option_index(keep)
        self.highlighted = index

    def on_resize(self) -> None:
        self.redraw()

    async def _on_key(self, event: events.Key) -> None:
        # Before the bindings (Textual runs those once the key reaches the app). The
        # letters typed behind this one reach the message box: the app routes each key
        # only once the one before has moved the focus (tui.input_order).
        peer = self.highlighted_username
        if (
            self.start_message is not None
            and event.is_printable
            and event.character
            and peer in self.friends
            and event.key not in self.screen.active_bindings
        ):
            event.stop()
            event.prevent_default()
            self.start_message(peer, event.character)
            return
        await super()._on_key(event)

    @property
    def highlighted_username(self) -> str | None:
        option = self.highlighted_option
        return option.id if option is not None else None

    def highlight(self, username: str) -> None:
        if username in self.friends:
            self.highlighted = self.get_option_index(username)
