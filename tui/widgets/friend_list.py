"""The friend list (left pane): display name, unread count, last activity.

Rows are sorted most recent activity first (friends never talked to last, by
name). The model is a dict of :class:`Friend` updated from ``GET /friends`` and
the change feed; each update re-renders the option prompts as ``rich.text.Text``
(user-chosen names are never parsed as markup) and keeps the cursor on the same
person. Unread counts are written as "(3)" and in bold: readable without colour.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from rich.text import Text
from textual.binding import Binding
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from tui.formatting import Clock, safe, short_activity, system_clock
from tui.widgets.chat_log import MY_MARKER


@dataclass(frozen=True)
class Friend:
    username: str
    display_name: str = ""
    unread: int = 0
    last_id: int = 0
    last_activity: Any = None

    @property
    def label(self) -> str:
        return safe(self.display_name or self.username)

    @classmethod
    def from_friend(cls, data: dict[str, Any]) -> Friend:
        last = data.get("last_message") or {}
        return cls(
            username=str(data["username"]),
            display_name=str(data.get("display_name") or ""),
            unread=int(data.get("unread") or 0),
            last_id=int(last.get("id") or 0),
            last_activity=last.get("date_sent"),
        )

    def updated(self, change: dict[str, Any]) -> Friend:
        return replace(
            self,
            display_name=str(change.get("display_name") or self.display_name),
            unread=int(change.get("unread") or 0),
            last_id=int(change.get("last_id") or self.last_id),
            last_activity=change.get("last_activity") or self.last_activity,
        )


def _sort_key(friend: Friend) -> tuple[int, float, str]:
    try:
        when = float(friend.last_activity) if friend.last_activity is not None else None
    except (TypeError, ValueError):
        when = None
    if when is None:
        return (1, 0.0, friend.label.casefold())
    return (0, -when, friend.label.casefold())


class FriendList(OptionList):
    """Keyboard-first list of friends; Enter opens the chat."""

    BINDINGS = [
        Binding("enter", "select", "Open chat", show=False, id="friends.open"),
    ]

    def __init__(
        self,
        *,
        clock: Clock = system_clock,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.clock = clock
        self.friends: dict[str, Friend] = {}
        self.open_peer: str | None = None

    def ordered(self) -> list[Friend]:
        return sorted(self.friends.values(), key=_sort_key)

    def set_friends(self, friends: list[Friend]) -> None:
        self.friends = {friend.username: friend for friend in friends}
        self.redraw()

    def apply_change(self, change: dict[str, Any]) -> tuple[Friend | None, Friend]:
        """Merge one change of the feed; returns (before, after)."""
        username = str(change["username"])
        before = self.friends.get(username)
        base = before or Friend(username=username)
        after = base.updated(change)
        self.friends[username] = after
        return before, after

    def drop(self, username: str) -> None:
        if self.friends.pop(username, None) is not None:
            self.redraw()

    def _prompt(self, friend: Friend) -> Text:
        marker = f"{MY_MARKER} " if friend.username == self.open_peer else "  "
        line = Text(no_wrap=True, overflow="ellipsis")
        line.append(marker)
        line.append(friend.label, style="bold" if friend.unread else "")
        if friend.unread:
            line.append(f" ({friend.unread})", style="bold")
        second = Text(no_wrap=True, overflow="ellipsis", style="dim")
        second.append(f"  @{safe(friend.username)}")
        activity = short_activity(friend.last_activity, self.clock)
        if activity:
            second.append(f" · {activity}")
        return Text("\n").join([line, second])

    def redraw(self) -> None:
        highlighted = self.highlighted_option
        keep = highlighted.id if highlighted is not None else None
        friends = self.ordered()
        self.set_options([Option(self._prompt(f), id=f.username) for f in friends])
        if not friends:
            return
        index = 0
        if keep is not None and keep in self.friends:
            index = self.get_option_index(keep)
        self.highlighted = index

    @property
    def highlighted_username(self) -> str | None:
        option = self.highlighted_option
        return option.id if option is not None else None

    def next_unread(self, after: str | None) -> str | None:
        """The next friend with unread messages, in list order, after ``after``."""
        ordered = [f for f in self.ordered()]
        names = [f.username for f in ordered]
        start = names.index(after) + 1 if after in names else 0
        for friend in ordered[start:] + ordered[:start]:
            if friend.unread and friend.username != after:
                return friend.username
        return None

    def highlight(self, username: str) -> None:
        if username in self.friends and username not in self._option_ids():
            self.redraw()
        if username in self._option_ids():
            self.highlighted = self.get_option_index(username)

    def _option_ids(self) -> set[str]:
        return {option.id for option in self.options if option.id is not None}
