"""The chat pane's message view: a Line-API ``ScrollView`` over a message model.

No widget per message: the model (messages by id, plus the outbox's pending
items for this peer) is rendered to ``Strip`` lines, one cached block per
message and width, and ``render_line`` only crops the visible ones. So opening
a chat is cheap however long the conversation is, and a resize re-wraps text
(the blocks are re-rendered at the new width), which ``RichLog`` cannot do.

Without colour, my messages are told apart by ``MY_MARKER`` (a right-pointing
quote) and the "me" label; pending and failed messages say so in words; day
separators split days.
Search highlights matches in reverse video. Reaching the top posts
:class:`ChatLog.NeedOlder` so the screen can load the previous page.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from rich.padding import Padding
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.binding import Binding
from textual.events import Resize
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from tui.formatting import Clock, day_key, day_label, message_time, safe, system_clock
from tui.outbox import OutboxItem

MY_MARKER = "\u203a"


@dataclass(frozen=True)
class Entry:
    """One row of the model: a stored message or a pending/failed outbox item."""

    key: str
    author: str
    text: str
    date_sent: Any
    mine: bool
    id: int | None = None
    state: str = "sent"  # "sent", "pending" or "failed"
    error: str | None = None


class ChatLog(ScrollView, can_focus=True):
    """Scrollable, virtual view of one conversation."""

    DEFAULT_CSS = """
    ChatLog {
        overflow-x: hidden;
        overflow-y: auto;
        scrollbar-size-vertical: 1;
    }
    """

    BINDINGS = [
        Binding("up", "scroll_up", "Scroll up", show=False, id="chat.scroll_up"),
        Binding("down", "scroll_down", "Scroll down", show=False, id="chat.scroll_down"),
        Binding("home", "scroll_home", "Oldest", show=False, id="chat.scroll_home"),
        Binding("end", "scroll_end", "Newest", show=False, id="chat.scroll_end"),
    ]

    class NeedOlder(Message):
        """The view reached its top and older messages exist on the server."""

        def __init__(self, peer: str, before_id: int) -> None:
            super().__init__()
            self.peer = peer
            self.before_id = before_id

    def __init__(
        self,
        me: str,
        *,
        clock: Clock = system_clock,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.me = me
        self.clock = clock
        self.peer: str | None = None
        self.peer_label = ""
        self.has_more_older = False
        self.loading_older = False
        self.placeholder = "Choose a friend on the left (Up/Down, Enter)."
        self._messages: dict[int, dict[str, Any]] = {}
        self._ids: list[int] = []
        self._pending: list[OutboxItem] = []
        self._labels: dict[str, str] = {}
        self._blocks: dict[tuple[str, int, str, bool, bool], list[Strip]] = {}
        self._lines: list[Strip] = []
        self._line_keys: list[str] = []
        self._width = 0
        self.search_term = ""
        self.current_match: str | None = None

    # -- model ------------------------------------------------------------------
    @property
    def message_ids(self) -> list[int]:
        return list(self._ids)

    @property
    def last_id(self) -> int:
        return self._ids[-1] if self._ids else 0

    @property
    def first_id(self) -> int | None:
        return self._ids[0] if self._ids else None

    @property
    def pending(self) -> list[OutboxItem]:
        return list(self._pending)

    def entries(self) -> list[Entry]:
        out = [self._entry(self._messages[i]) for i in self._ids]
        out += [self._pending_entry(item) for item in self._pending]
        return out

    def _entry(self, message: dict[str, Any]) -> Entry:
        author = safe(message.get("author", "?"))
        return Entry(
            key=f"m{message['id']}",
            author=author,
            text=str(message.get("message", "")),
            date_sent=message.get("date_sent"),
            mine=author.lower() == self.me.lower(),
            id=int(message["id"]),
        )

    def _pending_entry(self, item: OutboxItem) -> Entry:
        return Entry(
            key=f"p{item.client_id}",
            author=self.me,
            text=item.text,
            date_sent=int(item.created),
            mine=True,
            state="failed" if item.failed else "pending",
            error=item.error,
        )

    def open(self, peer: str, label: str = "") -> None:
        """Show an empty view for ``peer`` until its history arrives."""
        self.peer = peer
        self.peer_label = label or peer
        self.placeholder = "Loading…"
        self._messages.clear()
        self._ids.clear()
        self._pending.clear()
        self._labels.clear()
        self._blocks.clear()  # keyed by message id: ids repeat across conversations
        self.has_more_older = False
        self.loading_older = False
        self.search_term = ""
        self.current_match = None
        self._rebuild(keep="end")

    def set_history(self, messages: list[dict[str, Any]], has_more: bool) -> None:
        """The newest page of the open conversation (replaces what is shown)."""
        self._messages.clear()
        self._ids.clear()
        self._merge(messages)
        self.has_more_older = has_more
        self.placeholder = "No messages yet. Say hello below."
        self._rebuild(keep="end")

    def add_messages(self, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Newer messages (a poll or a send's reply); returns those that were new."""
        at_end = self._at_end()
        added = self._merge(messages)
        if added:
            self._drop_delivered_pending(added)
            self._rebuild(keep="end" if at_end else "top")
        return added

    def add_older(self, messages: list[dict[str, Any]], has_more: bool) -> None:
        """An older page (scrollback): keeps the current view where it is."""
        self.has_more_older = has_more
        self.loading_older = False
        self._merge(messages)
        self._rebuild(keep="top")

    def set_pending(self, items: list[OutboxItem]) -> None:
        at_end = self._at_end()
        self._pending = [item for item in items if item.to == self.peer]
        self._rebuild(keep="end" if at_end else "top")

    def _merge(self, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        added: list[dict[str, Any]] = []
        for message in messages:
            try:
                message_id = int(message["id"])
            except (KeyError, TypeError, ValueError):
                continue
            if message_id in self._messages:
                continue
            self._messages[message_id] = message
            added.append(message)
        if added:
            if self._ids and min(int(m["id"]) for m in added) > self._ids[-1]:
                self._ids.extend(sorted(int(m["id"]) for m in added))
            else:
                self._ids = sorted(self._messages)
        return added

    def _drop_delivered_pending(self, added: list[dict[str, Any]]) -> None:
        """A poll may bring my message back before its send reply: show it once."""
        for message in added:
            client_id = message.get("client_id")
            for item in list(self._pending):
                if (client_id and item.client_id == client_id) or (
                    not client_id
                    and str(message.get("author", "")).lower() == self.me.lower()
                    and item.text == message.get("message")
                ):
                    self._pending.remove(item)
                    break

    # -- search ---------------------------------------------------------------
    def matches(self, term: str) -> list[int]:
        """Ids of loaded messages containing ``term`` (case-insensitive), oldest first."""
        needle = term.casefold()
        messages = self._messages
        return [i for i in self._ids if needle in str(messages[i].get("message", "")).casefold()]

    def set_search(self, term: str, current: int | None) -> None:
        self.search_term = term
        self.current_match = None if current is None else f"m{current}"
        self._rebuild(keep="top")
        if self.current_match is not None:
            self.scroll_to_key(self.current_match)

    def scroll_to_key(self, key: str) -> None:
        try:
            line = self._line_keys.index(key)
        except ValueError:
            return
        target = max(0, line - max(1, self.scrollable_content_region.height // 3))
        self.scroll_to(y=target, animate=False, immediate=True, force=True)

    # -- rendering ---------------------------------------------------------------
    def refresh_times(self) -> None:
        """Relative times ("5 minutes ago") age: recompute labels and redraw."""
        self._labels.clear()
        self._rebuild(keep="end" if self._at_end() else "top")

    def _at_end(self) -> bool:
        return self.scroll_offset.y >= self.max_scroll_y - 1

    def _label(self, entry: Entry) -> str:
        if entry.state == "pending":
            return "pending…"
        if entry.state == "failed":
            return f"NOT SENT: {entry.error}"
        label = self._labels.get(entry.key)
        if label is None:
            label = message_time(entry.date_sent, self.clock)
            self._labels[entry.key] = label
        return label

    def _render_text(self, renderable: Any, width: int) -> list[Strip]:
        console = self.app.console
        options = console.options.update_width(width).update(highlight=False)
        lines = console.render_lines(renderable, options, pad=True)
        return [Strip(line, width) for line in lines]

    def _block(self, entry: Entry, width: int) -> list[Strip]:
        label = self._label(entry)
        is_current = entry.key == self.current_match
        has_term = bool(self.search_term) and self.search_term.casefold() in entry.text.casefold()
        cache_key = (entry.key, width, label, is_current, has_term)
        cached = self._blocks.get(cache_key)
        if cached is not None:
            return cached
        who = "me" if entry.mine else entry.author
        header = Text(no_wrap=True, overflow="ellipsis")
        header.append(f"{MY_MARKER} " if entry.mine else "  ")
        header.append(who, style="bold")
        header.append(f" · {label}", style="dim" if entry.state == "sent" else "italic")
        if is_current:
            header.append("  ◆ match", style="bold")
        body = Text(safe(entry.text), no_wrap=False, overflow="fold")
        if has_term:
            pattern = re.compile(re.escape(self.search_term), re.IGNORECASE)
            body.highlight_regex(pattern, "bold reverse" if is_current else "reverse")
        lines = self._render_text(header, width)
        lines += self._render_text(Padding(body, (0, 0, 0, 2)), width)
        self._blocks[cache_key] = lines
        return lines

    def _separator(self, label: str, width: int) -> Strip:
        text = f"── {label} "
        text = text + "─" * max(0, width - len(text))
        return Strip([Segment(text[:width], Style(dim=True))], min(width, len(text)))

    def _rebuild(self, keep: str = "top") -> None:
        """Re-lay out the lines from the model; ``keep`` the "top" message or the "end"."""
        width = self.scrollable_content_region.width
        if width <= 0:
            self._width = 0
            return
        if width != self._width:
            self._blocks.clear()
            self._width = width
        anchor_key: str | None = None
        anchor_offset = 0
        if keep == "top" and self._line_keys:
            top = min(int(self.scroll_offset.y), len(self._line_keys) - 1)
            keyed = [i for i in range(top, len(self._line_keys)) if self._line_keys[i]]
            if keyed:
                anchor_key = self._line_keys[keyed[0]]
                anchor_offset = top - self._line_keys.index(anchor_key)
        lines: list[Strip] = []
        keys: list[str] = []
        entries = self.entries()
        if not entries:
            for strip in self._render_text(Text(self.placeholder, style="dim"), width):
                lines.append(strip)
                keys.append("")
        elif self.has_more_older:
            hint = Text("  \u2191 PageUp for older messages", style="dim")
            lines.append(self._render_text(hint, width)[0])
            keys.append("")
        previous_day = None
        for entry in entries:
            day = day_key(entry.date_sent, self.clock)
            if day != previous_day:
                lines.append(self._separator(day_label(entry.date_sent, self.clock), width))
                keys.append(entry.key)
                previous_day = day
            block = self._block(entry, width)
            lines.extend(block)
            keys.extend([entry.key] * len(block))
        self._lines = lines
        self._line_keys = keys
        self.virtual_size = Size(width, len(lines))
        if keep == "end":
            self.scroll_to(y=self.max_scroll_y, animate=False, immediate=True, force=True)
        elif anchor_key is not None and anchor_key in keys:
            self.scroll_to(
                y=keys.index(anchor_key) + anchor_offset, animate=False, immediate=True, force=True
            )
        self.refresh()

    def on_resize(self, event: Resize) -> None:
        if self.scrollable_content_region.width != self._width:
            self._rebuild(keep="end" if self._at_end() or not self._width else "top")

    def render_line(self, y: int) -> Strip:
        index = self.scroll_offset.y + y
        width = self.scrollable_content_region.width
        style = self.rich_style
        if index >= len(self._lines):
            return Strip.blank(width, style)
        return self._lines[index].crop_extend(0, width, style).apply_style(style)

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        if new_value < 1 and old_value >= 1:
            self.request_older()

    def request_older(self) -> bool:
        """Ask the screen for the previous page, if there is one and none is on its way."""
        if self.peer and self.has_more_older and not self.loading_older and self._ids:
            self.loading_older = True
            self.post_message(self.NeedOlder(self.peer, self._ids[0]))
            return True
        return False

    def text_lines(self) -> list[str]:
        """The laid-out text (tests and debugging)."""
        return [strip.text.rstrip() for strip in self._lines]
