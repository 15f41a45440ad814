"""The chat pane's message view: a Line-API ``ScrollView`` over the core's conversation.

No widget per message: :class:`~tui.widgets.chat_layout.ChatLayout` maps rows to
blocks, and ``render_line`` draws only the visible rows, from an LRU cache of
rendered blocks (as Textual's ``Log`` does). So the cost of a frame, of a new
message or of a key press follows what is on screen, not what is loaded.

What the reader can trust:

- it *follows* the newest message while the view is at the bottom, across
  resizes; scrolled up, it stays put and counts what arrived below
  (``new_below``, shown by the pane as "↓ N new messages below"). Only messages
  newer than what the reader has seen count: a window of old messages (a search
  match, the original of a reply) is history, never "new" (``behind`` says the
  newest are not loaded);
- it reports :class:`Seen` only for messages that were on screen while this chat
  was shown on the active screen of a focused terminal, and the core marks only
  those read;
- opening a chat with unread messages draws a "new" line where they start and
  shows it;
- every message has its HH:MM, days are split by a line, and user text is drawn
  through :func:`~tui.text.display_text` (visible controls, stable widths); links
  are OSC 8 hyperlinks, so a URL folded over two lines is still one link.

Without colour, my messages are marked with ``MY_MARKER`` and "me"; pending and refused ones
say so in words.
"""

from __future__ import annotations

import bisect
import itertools
import re
from datetime import date, datetime

from rich.segment import Segment
from rich.style import Style
from textual.binding import Binding
from textual.cache import LRUCache
from textual.events import Resize
from textual.geometry import Size
from textual.message import Message as TextualMessage
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from tui.client.models import Message
from tui.code_blocks import (
    CODE,
    CODE_BACKGROUND,
    CODE_MORE,
    INLINE_CODE,
    code_texts,
    has_code,
    highlight,
    inline_spans,
)
from tui.core.conversation import Conversation, Merge
from tui.core.outbox import OutboxItem
from tui.formatting import Clock, clock_time, day_label, system_clock
from tui.text import fit, one_line, one_line_preview, url_spans
from tui.widgets.chat_layout import (
    BODY_INDENT,
    COMPACT_INDENT,
    DELETED,
    Block,
    ChatLayout,
    reactions_of,
)

MY_MARKER = "\u203a"
BOLD = Style(bold=True)
DIM = Style(dim=True)
ITALIC = Style(italic=True)
MATCH = Style(reverse=True)
CURRENT_MATCH = Style(reverse=True, bold=True)
NO_CHAT = "Choose a friend (\u2191 \u2193, Enter) or add one: F2."


class ChatLog(ScrollView, can_focus=True, inherit_bindings=False):
    """Scrollable, virtual view of the open conversation.

    Its keys are exactly its ``BINDINGS`` (Help lists them): End is not a scroll of
    this view but the chat pane's "newest" key, which works from the message box too.
    """

    DEFAULT_CSS = """
    ChatLog {
        overflow-x: hidden;
        overflow-y: auto;
        scrollbar-size-vertical: 1;
        scrollbar-gutter: stable;
    }
    """

    BINDINGS = [
        Binding(
            "up",
            "select_previous",
            "Previous message",
            show=False,
            tooltip="Select the message above (at the top, older ones load)",
            id="chat.previous",
        ),
        Binding(
            "down",
            "select_next",
            "Next message",
            show=False,
            tooltip="Select the message below",
            id="chat.next",
        ),
        Binding(
            "e", "act('edit')", "Edit", tooltip="Edit the selected message (yours)", id="chat.edit"
        ),
        Binding(
            "r", "act('reply')", "Reply", tooltip="Reply to the selected message", id="chat.reply"
        ),
        Binding(
            "d,delete",
            "act('delete')",
            "Delete",
            show=False,
            tooltip="Delete the selected message (yours; asks first)",
            id="chat.delete",
        ),
        Binding(
            "enter",
            "act('original')",
            "Original",
            show=False,
            tooltip="On a reply: show the message it answers (loads it if needed)",
            id="chat.original",
        ),
        Binding(
            "n",
            "act('next_match')",
            "Next match",
            show=False,
            tooltip="After a search: the next older match",
            id="chat.next_match",
        ),
        Binding(
            "N",
            "act('previous_match')",
            "Previous match",
            show=False,
            tooltip="After a search: the previous (newer) match",
            id="chat.previous_match",
        ),
        Binding(
            "c",
            "copy",
            "Copy",
            tooltip="Copy the selected message (OSC 52: works over SSH and in tmux)",
            id="chat.copy",
        ),
        Binding(
            "y",
            "copy_code",
            "Copy code",
            show=False,
            tooltip="Copy just the code block(s) of the selected message, as typed",
            id="chat.copy_code",
        ),
        Binding(
            "l",
            "links",
            "Links",
            tooltip="The chat's links, newest first: open one, or copy it",
            id="chat.links",
        ),
        Binding(
            "s",
            "act('save')",
            "Save file",
            show=False,
            tooltip="Save the selected message's file (📎) into the download folder",
            id="chat.save_file",
        ),
        Binding(
            "plus",
            "act('react')",
            "React",
            show=False,
            tooltip="React to the selected message: a picker (the same again removes it)",
            id="chat.react",
        ),
        Binding("home", "scroll_home", "Oldest", show=False, id="chat.scroll_home"),
        Binding("pageup", "screen.older", "Older", id="chat.older"),
        Binding("pagedown", "screen.newer", "Newer", show=False, id="chat.newer"),
        Binding("escape", "leave", "Friends", id="chat.friends"),
        Binding("question_mark", "app.help", "Help", show=False, id="chat.help"),
    ]

    new_below: reactive[int] = reactive(0)
    """Messages from the peer below the view, newer than the newest the reader has seen."""
    behind: reactive[bool] = reactive(False)
    """The loaded messages are a window that ends before the newest (not loaded)."""

    class NeedOlder(TextualMessage):
        """The view reached its top and older messages exist on the server."""

        def __init__(self, peer: str) -> None:
            super().__init__()
            self.peer = peer

    class NeedNewer(TextualMessage):
        """A window around an old message reached its bottom; newer messages exist."""

        def __init__(self, peer: str) -> None:
            super().__init__()
            self.peer = peer

    class Act(TextualMessage):
        """A key asked for ``action`` on the selected message (``message_id``, or None)."""

        def __init__(self, action: str, message_id: int | None) -> None:
            super().__init__()
            self.action = action
            self.message_id = message_id

    class LinksWanted(TextualMessage):
        """The user asked for the chat's links (the selected message's first)."""

        def __init__(self, peer: str, selected: int | None) -> None:
            super().__init__()
            self.peer = peer
            self.selected = selected

    class Seen(TextualMessage):
        """Messages up to ``message_id`` were on screen in the focused chat."""

        def __init__(self, peer: str, message_id: int) -> None:
            super().__init__()
            self.peer = peer
            self.message_id = message_id

    def __init__(
        self,
        me: str,
        *,
        clock: Clock = system_clock,
        compact: bool = False,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.me = me.lower()
        self.clock = clock
        self.chat_layout = ChatLayout(self.me, clock().tzinfo, compact=compact)
        self.conversation: Conversation | None = None
        self.follow = True
        self.loading_older = False
        self.loading_newer = False
        self.search_term = ""
        self.current_match: int | None = None
        self.selected: int | None = None
        """The message the keys act on (Copy, …), or None."""
        self.seen_id: int | None = None
        """My newest message the peer has read (drawn with "seen")."""
        self.changes: dict[int, OutboxItem] = {}
        """Edits and deletes of loaded messages waiting in the outbox, by message id."""
        self.rendered = 0
        """Blocks rendered to strips so far (the cache misses): read by tests and the bench."""
        self._cache: LRUCache[tuple[object, ...], list[Strip]] = LRUCache(4096)
        self._today: date = clock().date()
        self._seen_up_to = 0
        self._reported = 0

    # -- what is shown -------------------------------------------------------------------
    @property
    def peer(self) -> str | None:
        return self.conversation.peer if self.conversation is not None else None

    @property
    def has_more_older(self) -> bool:
        return self.conversation is not None and self.conversation.has_more_older

    @property
    def message_ids(self) -> list[int]:
        return [m.id for m in self.conversation.messages] if self.conversation else []

    @property
    def pending(self) -> list[OutboxItem]:
        return [block.item for block in self.chat_layout.tail if block.item is not None]

    @property
    def placeholder(self) -> str:
        chat = self.conversation
        if chat is None:
            return NO_CHAT
        if chat.unavailable:
            return chat.unavailable
        if not chat.loaded:
            return "Loading\u2026"
        return "No messages yet. Say hello below."

    # -- changes from the core (through the pane) -------------------------------------------
    def show(self, conversation: Conversation | None) -> None:
        """A newly opened chat (still loading) or none."""
        self.conversation = conversation
        self.loading_older = False
        self.search_term = ""
        self.current_match = None
        self.selected = None
        self.chat_layout.reset([], None)
        self.chat_layout.set_pending([])
        self._cache.clear()
        self._seen_up_to = self._reported = 0
        self.new_below = 0
        self.behind = False
        self._update_size(follow=True)

    def loaded(self) -> None:
        """The conversation's newest page arrived: lay it out and show where unread starts."""
        chat = self.conversation
        if chat is None:
            return
        self.chat_layout.width = self._content_width() or self.chat_layout.width
        self.chat_layout.reset(chat.messages, chat.first_unread_id)
        self._seen_up_to = (chat.first_unread_id - 1) if chat.first_unread_id else chat.last_id
        self._update_size(follow=True)
        if chat.first_unread_id is not None:
            self._show_new_line()
        self._after_change()

    def moved(self, focus: int | None) -> None:
        """The core replaced the loaded messages: a window around ``focus`` (selected and
        brought into view), or the newest page (``focus`` None: shown at the bottom).

        What the reader has seen is kept: the messages of a window are history, and
        only what is newer than the newest seen counts as new below.
        """
        chat = self.conversation
        if chat is None:
            return
        self.loading_older = self.loading_newer = False
        self.chat_layout.width = self._content_width() or self.chat_layout.width
        self.chat_layout.reset(chat.messages, chat.first_unread_id)
        if focus is None:
            self.selected = None
            self._update_size(follow=True)
        else:
            # Not to the bottom first: at the bottom of a window its next page would load.
            self.follow = False
            self._update_size(follow=False)
            block = self.chat_layout.block_of_message(focus)
            row = self.chat_layout.first_row_of(block) if block is not None else None
            if row is not None:
                y = 1 + row - self.scrollable_content_region.height // 3
                self.scroll_to(y=max(0, y), animate=False, immediate=True, force=True)
            self._select(focus)
        self._after_change()

    def added(self, merge: Merge) -> None:
        """Messages merged into the conversation (newer, older, or both)."""
        chat = self.conversation
        if chat is None or not chat.loaded:
            return
        # A window's next page, asked for at its bottom, goes below and the view stays:
        # following it to the new bottom would ask for the next one, and so on to the
        # newest (a crawl of the whole history).
        page_below = self.loading_newer and bool(merge.newer)
        if merge.updated and not merge.reordered:
            anchor = self._top_anchor()
            self.chat_layout.update(merge.updated)
            self._update_size(follow=self.follow, anchor=anchor)
        if merge.reordered:
            self.chat_layout.reset(chat.messages, chat.first_unread_id)
            self._update_size(follow=self.follow)
        else:
            if merge.newer:
                self.loading_newer = False
                self.chat_layout.append(merge.newer)
                if page_below:
                    self.follow = False
            if merge.older:
                self.loading_older = False
                anchor = self._top_anchor()
                self.chat_layout.prepend(merge.older)
                self._update_size(follow=self.follow, anchor=anchor)
            else:
                self._update_size(follow=self.follow)
        if not merge:
            self.loading_older = self.loading_newer = False
            self.refresh()
        self._after_change()

    def set_pending(self, items: list[OutboxItem]) -> None:
        self.chat_layout.set_pending(items)
        self._update_size(follow=self.follow)

    def set_search(self, term: str, current: int | None) -> None:
        self.search_term = term
        self.current_match = current
        if current is not None:
            block = self.chat_layout.block_of_message(current)
            row = self.chat_layout.first_row_of(block) if block is not None else None
            if row is not None:
                target = 1 + row - max(1, self.scrollable_content_region.height // 3)
                self.follow = False
                self.scroll_to(y=max(0, target), animate=False, immediate=True, force=True)
        self.refresh()

    def set_compact(self, compact: bool) -> None:
        if compact != self.chat_layout.compact:
            anchor = self._top_anchor()
            self._cache.clear()
            self.chat_layout.relayout(self.chat_layout.width, compact)
            self._update_size(follow=self.follow, anchor=anchor)

    def refresh_day(self) -> None:
        """At midnight "Today" becomes "Yesterday": redraw the day lines."""
        today = self.clock().date()
        if today != self._today:
            self._today = today
            self._cache.clear()
            self.refresh()

    # -- scrolling ---------------------------------------------------------------------------
    def _content_width(self) -> int:
        return self.scrollable_content_region.width

    def _top_anchor(self) -> tuple[Block, int] | None:
        """The first message at or below the top of the view, and the top's offset from
        its first row (day lines may be merged away when older messages arrive)."""
        if self.follow:
            return None
        top = max(0, int(self.scroll_offset.y) - 1)
        layout = self.chat_layout
        for index in range(top, min(layout.height, top + 200)):
            row = layout.row(index)
            if row is not None and row[0].message_id is not None:
                return row[0], top - (index - row[1])
        return None

    def _update_size(self, follow: bool, anchor: tuple[Block, int] | None = None) -> None:
        width = self._content_width()
        self.virtual_size = Size(max(1, width), 1 + self.chat_layout.height + self._bottom_rows)
        if follow:
            self.scroll_to(y=self.max_scroll_y, animate=False, immediate=True, force=True)
            self.follow = True
        elif anchor is not None:
            row = self.chat_layout.first_row_of(anchor[0])
            if row is not None:
                y = 1 + row + anchor[1]
                self.scroll_to(y=y, animate=False, immediate=True, force=True)
        self.refresh()

    def _show_new_line(self) -> None:
        rows = self.chat_layout.rows
        new_row = next((i for i, (b, _) in enumerate(rows) if b.kind == "new"), None)
        if new_row is None:
            return
        height = self.scrollable_content_region.height
        if 1 + new_row < self.max_scroll_y:
            # The unread messages do not fit: start at the "new" line, leave them below.
            self.scroll_to(y=max(0, new_row), animate=False, immediate=True, force=True)
            self.follow = self.scroll_offset.y >= self.max_scroll_y
        del height

    def on_resize(self, event: Resize) -> None:
        width = self._content_width()
        anchor = self._top_anchor()
        if width != self.chat_layout.width and width > 0:
            self._cache.clear()
            self.chat_layout.relayout(width)
        self._update_size(follow=self.follow, anchor=anchor)
        self._after_change()

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        self.follow = new_value >= self.max_scroll_y
        if new_value < 1 <= old_value:
            self.request_older()
        if self.follow and new_value > old_value:
            self.request_newer()
        self._after_change()

    def request_older(self) -> bool:
        """Ask for the previous page, if there is one and none is on its way."""
        chat = self.conversation
        if chat is not None and chat.has_more_older and not self.loading_older and chat.messages:
            self.loading_older = True
            self.refresh()
            self.post_message(self.NeedOlder(chat.peer))
            return True
        return False

    def request_newer(self) -> bool:
        """A window around an old message reached its end: ask for the next page."""
        chat = self.conversation
        if chat is not None and chat.has_more_newer and not self.loading_newer:
            self.loading_newer = True
            self.post_message(self.NeedNewer(chat.peer))
            return True
        return False

    def action_scroll_end(self) -> None:
        self.selected = None
        self.refresh()
        self.scroll_to(y=self.max_scroll_y, animate=False, immediate=True, force=True)

    # -- the selected message ------------------------------------------------------------------
    def _select(self, message_id: int) -> None:
        self.selected = message_id
        block = self.chat_layout.block_of_message(message_id)
        row = self.chat_layout.first_row_of(block) if block is not None else None
        if block is not None and row is not None:
            first, last = 1 + row, row + block.height
            top = int(self.scroll_offset.y)
            height = self.scrollable_content_region.height
            if first < top:
                self.scroll_to(y=first, animate=False, immediate=True, force=True)
            elif last >= top + height:
                self.scroll_to(y=last - height + 1, animate=False, immediate=True, force=True)
        self.refresh()

    def action_select_previous(self) -> None:
        chat = self.conversation
        if chat is None or not chat.messages:
            self.scroll_up(animate=False)
            return
        if self.selected is None:
            visible = self.visible_ids()
            self._select(max(visible) if visible else chat.messages[-1].id)
            return
        index = bisect.bisect_left(chat.messages, self.selected, key=lambda m: m.id)
        if index > 0:
            self._select(chat.messages[index - 1].id)
        else:
            self.scroll_to(y=0, animate=False, immediate=True, force=True)
            self.request_older()

    def action_select_next(self) -> None:
        chat = self.conversation
        if chat is None or self.selected is None:
            self.scroll_down(animate=False)
            return
        index = bisect.bisect_right(chat.messages, self.selected, key=lambda m: m.id)
        if index < len(chat.messages):
            self._select(chat.messages[index].id)
        else:
            self.action_scroll_end()

    def selected_message(self) -> Message | None:
        chat = self.conversation
        if chat is None or self.selected is None:
            return None
        index = bisect.bisect_left(chat.messages, self.selected, key=lambda m: m.id)
        if index < len(chat.messages) and chat.messages[index].id == self.selected:
            return chat.messages[index]
        return None

    def action_act(self, action: str) -> None:
        self.post_message(self.Act(action, self.selected))

    def select(self, message_id: int) -> None:
        """Select ``message_id`` (loaded) and bring it into view."""
        self._select(message_id)

    def action_copy(self) -> None:
        message = self.selected_message()
        if message is None:
            self.app.notify("Select a message first (\u2191 \u2193).", markup=False, timeout=3)
            return
        self.app.copy_to_clipboard(message.text)
        self.app.notify("Copied the message.", markup=False, timeout=2)

    def action_copy_code(self) -> None:
        message = self.selected_message()
        if message is None:
            self.app.notify("Select a message first (\u2191 \u2193).", markup=False, timeout=3)
            return
        code = code_texts(message.text) if not message.deleted else []
        if not code:
            self.app.notify("No code block in this message (c copies it all).", markup=False)
            return
        self.app.copy_to_clipboard("\n\n".join(code))
        what = "the code block" if len(code) == 1 else f"{len(code)} code blocks"
        self.app.notify(f"Copied {what}.", markup=False, timeout=2)

    def action_links(self) -> None:
        if self.conversation is not None:
            self.post_message(self.LinksWanted(self.conversation.peer, self.selected))

    async def action_leave(self) -> None:
        if self.search_term:  # a search is showing its match: Esc ends the search first
            self.selected = None
            await self.run_action("screen.escape")
            return
        if self.selected is not None:
            self.selected = None
            self.refresh()
            return
        await self.run_action("screen.escape")

    # -- what was seen -------------------------------------------------------------------------
    def on_mount(self) -> None:
        # Back in a focused terminal: what the chat shows is in front of the user again.
        self.watch(self.app, "app_focus", self._focus_changed, init=False)

    def _focus_changed(self, focused: bool) -> None:
        if focused:
            self.report_seen()

    def _after_change(self) -> None:
        chat = self.conversation
        self.behind = chat is not None and chat.loaded and chat.has_more_newer
        if self.is_mounted:
            self.call_after_refresh(self.report_seen)

    @property
    def attentive(self) -> bool:
        """Shown to the user now: the open chat, on the active screen, in a focused terminal."""
        return (
            self.conversation is not None
            and self.conversation.loaded
            and self.is_mounted
            and self.screen.is_active
            and self.app.app_focus
            and self.display
        )

    def visible_ids(self) -> list[int]:
        top = int(self.scroll_offset.y)
        height = self.scrollable_content_region.height
        ids = []
        for index in range(max(0, top - 1), top - 1 + height):
            row = self.chat_layout.row(index)
            if row is not None and row[0].message_id is not None and row[1] == row[0].height - 1:
                ids.append(row[0].message_id)  # whole message on screen: its last row is
        return ids

    def report_seen(self) -> None:
        chat = self.conversation
        if chat is None or not self.attentive:
            return
        visible = self.visible_ids()
        newest = max(visible, default=0)
        if newest > self._seen_up_to:
            self._seen_up_to = newest
        if newest > self._reported:
            self._reported = newest
            self.post_message(self.Seen(chat.peer, newest))
        self.new_below = 0 if self.follow else self._unseen_below(chat)

    def _unseen_below(self, chat: Conversation) -> int:
        count = 0
        for message in reversed(chat.messages):
            if message.id <= self._seen_up_to:
                break
            if message.author.lower() != self.me:
                count += 1
        return count

    # -- rendering -----------------------------------------------------------------------------
    @property
    def _bottom_rows(self) -> int:
        chat = self.conversation
        return 1 if chat is not None and chat.has_more_newer else 0

    def render_line(self, y: int) -> Strip:
        index = int(self.scroll_offset.y) + y
        width = self._content_width()
        style = self.rich_style
        if index == 0:
            strip = self._top_line(width)
        else:
            row = self.chat_layout.row(index - 1)
            if row is None:
                if index == 1 + self.chat_layout.height and self._bottom_rows:
                    more = (
                        "  loading newer messages\u2026"
                        if self.loading_newer
                        else ("  \u2193 PageDown for newer messages")
                    )
                    return Strip([Segment(fit(more, width), DIM)]).crop_extend(0, width, style)
                return Strip.blank(width, style)
            block, line = row
            strips = self._strips(block, width)
            strip = strips[line] if line < len(strips) else Strip.blank(width)
        return strip.crop_extend(0, width, style).apply_style(style)

    def _top_line(self, width: int) -> Strip:
        chat = self.conversation
        if chat is None or not (self.chat_layout.blocks or self.chat_layout.tail):
            return Strip([Segment(fit(self.placeholder, width), DIM)])
        if self.loading_older:
            text = "  loading older messages\u2026"
        elif chat.has_more_older:
            text = "  \u2191 PageUp for older messages"
        else:
            text = "  \u2500\u2500 start of the conversation \u2500\u2500"
        return Strip([Segment(fit(text, width), DIM)])

    def _strips(self, block: Block, width: int) -> list[Strip]:
        term = self.search_term
        has_term = bool(term) and term.casefold() in block.text.casefold()
        variant: tuple[object, ...]
        if block.kind == "day":
            variant = (day_label(block.when, self._today_dt()),)
        else:
            message_id = block.message_id
            change = self.changes.get(message_id) if message_id is not None else None
            variant = (
                term if has_term else "",
                message_id is not None and message_id == self.current_match,
                message_id is not None and message_id == self.selected,
                message_id is not None and message_id == self.seen_id,
                block.message.rev if block.message is not None else 0,
                (change.kind, change.error) if change is not None else None,
                self._quote(block) if block.quote else "",
            )
        key = (block.key, width, self.chat_layout.compact, *variant)
        strips = self._cache.get(key)
        if strips is None:
            self.rendered += 1
            strips = self._render_block(block, width, has_term)
            self._cache[key] = strips
        return strips

    def _today_dt(self) -> datetime:
        return self.clock().datetime

    def _quote(self, block: Block) -> str:
        """The one-line quote of the message ``block`` replies to."""
        reply_to = (
            block.message.reply_to if block.message else block.item.reply_to if block.item else None
        )
        original = self.conversation.get(reply_to) if self.conversation else None
        if original is None:
            return "\u21b3 in reply to an earlier message (Enter: show it)"
        who = "me" if original.author.lower() == self.me else one_line(original.author)
        text = DELETED if original.deleted else one_line_preview(original.text, original.attachment)
        return f"\u21b3 {who}: {text}"

    def _status(self, block: Block) -> list[tuple[str, Style]]:
        """What the header says after the name: time, pending, refused, edited, seen, match."""
        item = block.item
        if block.kind == "pending" and item is not None and item.failed:
            return [(f" \u00b7 NOT SENT: {item.error} (F7: retry or discard)", BOLD)]
        if block.kind == "pending":
            return [(" \u00b7 pending\u2026", ITALIC)]
        status = [(f" \u00b7 {clock_time(block.when)}", DIM)]
        message = block.message
        change = self.changes.get(message.id) if message is not None else None
        if message is not None and message.deleted:
            status.append((" \u00b7 deleted", DIM))
        elif message is not None and message.edited_at is not None:
            status.append((" \u00b7 (edited)", DIM))
        if change is not None:
            doing = "deleting" if change.kind == "delete" else "saving the edit"
            if change.failed:
                status.append((f" \u00b7 NOT SAVED: {change.error} (F7)", BOLD))
            else:
                status.append((f" \u00b7 {doing}\u2026", ITALIC))
        if message is not None and message.id == self.seen_id:
            status.append((" \u00b7 seen", DIM))
        if message is not None and message.id == self.current_match:
            status.append(("  \u25c6 match", BOLD))
        return status

    def _render_block(self, block: Block, width: int, has_term: bool) -> list[Strip]:
        strips = self._render_body(block, width, has_term)
        reactions = reactions_of(block)
        if reactions:
            indent = COMPACT_INDENT if self.chat_layout.compact else BODY_INDENT
            strips.append(
                _fit_parts([(" " * indent, Style()), *self._reaction_parts(reactions)], width)
            )
        return strips

    def _reaction_parts(
        self, reactions: tuple[tuple[str, tuple[str, ...]], ...]
    ) -> list[tuple[str, Style]]:
        """``👍 2  [❤️ 1]``: each emoji and how many; mine in brackets and bold."""
        parts: list[tuple[str, Style]] = []
        for emoji, names in reactions:
            mine = self.me in names
            text = f"{one_line(emoji)} {len(names)}"  # one width in every terminal
            if parts:
                parts.append(("  ", Style()))
            parts.append((f"[{text}]" if mine else text, BOLD if mine else DIM))
        return parts

    def _render_body(self, block: Block, width: int, has_term: bool) -> list[Strip]:
        if block.kind == "day":
            return [_rule(day_label(block.when, self._today_dt()), width, DIM)]
        if block.kind == "new":
            return [_rule("new", width, BOLD)]
        who = "me" if block.mine else block.author
        marker = f"{MY_MARKER} " if block.mine else "  "
        selected = block.message_id is not None and block.message_id == self.selected
        if selected:
            marker = "\u25b6 "  # drawn without colour too
        status = self._status(block)
        deleted = block.message is not None and block.message.deleted
        styles = [] if deleted else self._body_styles(block, has_term)
        body_style = DIM + ITALIC if deleted else Style()
        quote = (
            [_fit_parts([("  ", Style()), (self._quote(block), DIM)], width)] if block.quote else []
        )
        if self.chat_layout.compact:
            time_text = "--:--" if block.kind == "pending" else clock_time(block.when)
            head = [(f"{time_text} ", DIM), (who, BOLD), (": ", Style())]
            strips = []
            by_row = _by_row(block.lines, styles)
            for number, (start, end) in enumerate(block.lines):
                prefix = head if number == 0 else [(" " * COMPACT_INDENT, Style())]
                kind = block.kinds[number] if block.kinds else 0
                row_styles = by_row[number]
                strips.append(
                    _body_line(prefix, kind, block, (start, end), row_styles, width, body_style)
                )
            # With code the last row is a code row to the edge: the status goes on the
            # first, which holds only "HH:MM who:".
            last = 0 if block.kinds else -1
            strips[last] = _append(
                strips[last], status[1:] if block.kind != "pending" else status, width
            )
            if selected:
                strips[0] = strips[0].apply_style(Style(reverse=True))
            return quote + strips
        header = _fit_parts([(marker, Style()), (who, BOLD), *status], width)
        if selected:
            header = header.apply_style(Style(reverse=True))
        strips = [header, *quote]
        indent = [(" " * BODY_INDENT, Style())]
        if block.kinds is None:
            for start, end in block.lines:
                strips.append(_line(indent, block.text, start, end, styles, width, body_style))
            return strips
        by_row = _by_row(block.lines, styles)
        for number, (start, end) in enumerate(block.lines):
            kind = block.kinds[number]
            row_styles = by_row[number]
            strips.append(_body_line(indent, kind, block, (start, end), row_styles, width))
        return strips

    def _body_styles(self, block: Block, has_term: bool) -> list[tuple[int, int, Style]]:
        styles = [(a, b, Style(link=url, underline=True)) for a, b, url in url_spans(block.text)]
        if has_code(block.text):
            for fence in block.fences:
                styles.append((*fence.open, DIM))
                if fence.close is not None:
                    styles.append((*fence.close, DIM))
                styles += highlight(block.text, fence)
            styles += [(a, b, INLINE_CODE) for a, b in inline_spans(block.text, block.fences)]
        if has_term:
            current = block.message_id is not None and block.message_id == self.current_match
            style = CURRENT_MATCH if current else MATCH
            pattern = re.compile(re.escape(self.search_term), re.IGNORECASE)
            styles += [(m.start(), m.end(), style) for m in pattern.finditer(block.text)]
        return styles

    # -- for tests and debugging ---------------------------------------------------------------
    def text_lines(self) -> list[str]:
        """Every laid-out row as text (renders them all: tests only)."""
        width = self._content_width() or 80
        lines = [self._top_line(width).text.rstrip()]
        for block, line in [*self.chat_layout.rows, *self.chat_layout.tail_rows]:
            strips = self._strips(block, width)
            lines.append(strips[line].text.rstrip() if line < len(strips) else "")
        return lines

    def screen_lines(self) -> list[str]:
        """The rows on screen now, as text."""
        height = self.scrollable_content_region.height
        return [self.render_line(y).text.rstrip() for y in range(height)]


def _rule(label: str, width: int, style: Style) -> Strip:
    text = f"\u2500\u2500 {label} "
    text = fit(text + "\u2500" * max(0, width - len(text)), width)
    return Strip([Segment(text, style)])


def _fit_parts(parts: list[tuple[str, Style]], width: int) -> Strip:
    segments = []
    used = 0
    for text, style in parts:
        room = width - used
        if room <= 0:
            break
        piece = fit(text, room)
        segments.append(Segment(piece, style))
        used += Segment(piece).cell_length
        if piece != text:
            break
    return Strip(segments)


def _append(strip: Strip, parts: list[tuple[str, Style]], width: int) -> Strip:
    room = width - strip.cell_length
    tail = _fit_parts(parts, room) if room > 0 else Strip([])
    return Strip([*strip, *tail])


def _line(
    prefix: list[tuple[str, Style]],
    text: str,
    start: int,
    end: int,
    styles: list[tuple[int, int, Style]],
    width: int,
    base: Style | None = None,
) -> Strip:
    segments = [Segment(piece, style) for piece, style in prefix]
    if not styles:
        segments.append(Segment(text[start:end], base))
        return Strip(segments)
    cuts = {start, end}
    for a, b, _ in styles:
        if a < end and b > start:
            cuts.update((max(a, start), min(b, end)))
    points = sorted(cuts)
    for a, b in itertools.pairwise(points):
        style = base or Style()
        for s_start, s_end, s_style in styles:
            if s_start <= a and b <= s_end:
                style += s_style
        segments.append(Segment(text[a:b], style))
    return Strip(segments)


_GUTTERS = {CODE: "\u2502 ", CODE_MORE: "\u21aa "}


def _body_line(
    prefix: list[tuple[str, Style]],
    kind: int,
    block: Block,
    row: tuple[int, int],
    styles: list[tuple[int, int, Style]],
    width: int,
    base: Style | None = None,
) -> Strip:
    """A row of a message with code: prose as always, code on its background to the edge."""
    start, end = row
    gutter = _GUTTERS.get(kind)
    if gutter is None:
        return _line(prefix, block.text, start, end, styles, width, base)
    strip = _line(
        [*prefix, (gutter, DIM + CODE_BACKGROUND)],
        block.text,
        start,
        end,
        styles,
        width,
        CODE_BACKGROUND,
    )
    room = width - strip.cell_length
    if room > 0:
        strip = Strip([*strip, Segment(" " * room, CODE_BACKGROUND)])
    return strip


def _by_row(
    lines: list[tuple[int, int]], styles: list[tuple[int, int, Style]]
) -> list[list[tuple[int, int, Style]]]:
    """``styles`` split by the rows they touch (a code block has many: each row gets its own)."""
    rows: list[list[tuple[int, int, Style]]] = [[] for _ in lines]
    if not styles:
        return rows
    starts = [start for start, _ in lines]
    for style in styles:
        a, b, _ = style
        index = max(0, bisect.bisect_right(starts, a) - 1)
        while index < len(lines) and lines[index][0] < b:
            if lines[index][1] > a:
                rows[index].append(style)
            index += 1
    return rows
