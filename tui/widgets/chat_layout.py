"""The chat view's layout: which blocks (day lines, messages, pending items) fill which rows.

Pure Python over the core's models, no Textual: the widget in
:mod:`tui.widgets.chat_log` asks it for the row at a screen line and draws only
what is visible. The work it does follows what changed, not what is loaded:

- a new message appends its block (wrapped once at the current width);
- an older page prepends its blocks and re-indexes rows (no re-wrapping);
- only a width or layout change wraps every block again.

``wrapped`` counts the blocks wrapped so far: the tests read it to prove that an
incoming message costs the same with 20,000 messages loaded as with 100.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from pathlib import Path

from rich.cells import cell_len

from tui.client.models import Attachment, Message
from tui.code_blocks import TEXT, Fence, fences, layout
from tui.core.outbox import OutboxItem
from tui.formatting import to_local
from tui.text import display_text, one_line, with_attachment, wrap

DELETED = "message deleted"
"""The body drawn for a deleted message (its ``message`` is empty)."""
COMPACT_INDENT = 6
"""Continuation lines of the compact layout start under the text, after "HH:MM "."""
BODY_INDENT = 2


@dataclass(eq=False)
class Block:
    """A run of rows: a day separator, the "new" line, a message or a pending item."""

    kind: str  # "day", "new", "message", "pending"
    key: str
    when: datetime | None = None
    message: Message | None = None
    item: OutboxItem | None = None
    author: str = ""
    mine: bool = False
    text: str = ""
    """The body as drawn (:func:`~tui.text.display_text`)."""
    lines: list[tuple[int, int]] = field(default_factory=list)
    kinds: list[int] | None = None
    """What each of ``lines`` is (:mod:`tui.code_blocks`), or None: all prose."""
    fences: list[Fence] = field(default_factory=list)
    """The fenced code blocks of ``text``."""
    lead: int = 0
    """Compact layout: cells of the first line taken by "HH:MM who: "."""
    quote: bool = False
    """A reply: one row quotes the original above the body."""
    height: int = 1

    @property
    def message_id(self) -> int | None:
        return self.message.id if self.message is not None else None


def reactions_of(block: Block) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """The reactions ``block`` shows in a row under its body (none on a deleted message)."""
    message = block.message
    if block.kind != "message" or message is None or message.deleted:
        return ()
    return message.reactions


def pending_attachment(item: OutboxItem) -> Attachment | None:
    """The file a pending item sends, as it is on disk now (size 0 if it went away)."""
    if not item.file_name or item.path is None:
        return None
    try:
        size = Path(item.path).stat().st_size
    except OSError:
        size = 0
    return Attachment(item.file_name, size)


class ChatLayout:
    """Blocks and rows of one conversation at one width."""

    def __init__(self, me: str, zone: tzinfo | None, *, compact: bool = False) -> None:
        self.me = me
        self.zone = zone
        self.compact = compact
        self.width = 0
        self.blocks: list[Block] = []
        self.rows: list[tuple[Block, int]] = []
        self.tail: list[Block] = []
        self.tail_rows: list[tuple[Block, int]] = []
        self.first_unread_id: int | None = None
        self.wrapped = 0
        self._first_row: dict[str, int] = {}
        self._by_id: dict[int, Block] = {}

    # -- building blocks --------------------------------------------------------------
    def _message_block(self, message: Message) -> Block:
        author = message.author.lower()
        return Block(
            "message",
            f"m{message.id}",
            when=to_local(message.date_sent, self.zone),
            message=message,
            author=one_line(message.author),
            mine=author == self.me,
            text=DELETED
            if message.deleted
            else with_attachment(display_text(message.text), message.attachment),
            quote=message.reply_to is not None,
        )

    def _pending_block(self, item: OutboxItem) -> Block:
        return Block(
            "pending",
            f"p{item.client_id}:{item.error or ''}",
            when=to_local(item.created, self.zone),
            item=item,
            author=self.me,
            mine=True,
            text=with_attachment(display_text(item.text), pending_attachment(item)),
            quote=item.reply_to is not None,
        )

    def _blocks_for(
        self, messages: tuple[Message, ...] | list[Message], day: object
    ) -> list[Block]:
        """Blocks of ``messages`` in order, with a day line where the day changes."""
        out: list[Block] = []
        for message in messages:
            block = self._message_block(message)
            this_day = block.when.date() if block.when else None
            if this_day != day:
                out.append(Block("day", f"d{message.id}", when=block.when))
                day = this_day
            if message.id == self.first_unread_id:
                out.append(Block("new", "new"))
            out.append(block)
        return out

    @staticmethod
    def _day(block: Block | None) -> object:
        if block is None:
            return _NO_DAY
        return block.when.date() if block.when else None

    def _last_message_block(self) -> Block | None:
        for block in reversed(self.blocks):
            if block.kind == "message":
                return block
        return None

    # -- measuring -----------------------------------------------------------------------
    def measure(self, block: Block) -> None:
        self._measure(block)
        if reactions_of(block):
            block.height += 1  # the reactions row under the body

    def _measure(self, block: Block) -> None:
        if block.kind not in ("message", "pending"):
            block.height = 1
            return
        self.wrapped += 1
        width = self.width
        block.fences = fences(block.text)  # a deleted message's text is DELETED: none
        if block.fences:
            # Code: prose wraps, code is folded by cells. Compact: the body starts under
            # the "HH:MM who:" row, so a code row never shares a row with the name.
            indent = COMPACT_INDENT if self.compact else BODY_INDENT
            lines, kinds = layout(block.text, max(8, width - indent), block.fences)
            if self.compact:
                lines, kinds = [(0, 0), *lines], [TEXT, *kinds]
            block.lines, block.kinds = lines, kinds
            block.height = len(lines) + block.quote + (0 if self.compact else 1)
            return
        block.kinds = None
        if self.compact:
            prefix = f"HH:MM {'me' if block.mine else block.author}: "
            block.lead = cell_len(prefix)
            available = max(8, width - COMPACT_INDENT)
            lead = max(0, min(block.lead - COMPACT_INDENT, available - 1))
            block.lines = [
                (a - lead, b - lead) for a, b in wrap(" " * lead + block.text, available)
            ]
            block.lines[0] = (0, block.lines[0][1])
            block.height = len(block.lines) + block.quote
        else:
            block.lines = wrap(block.text, max(1, width - BODY_INDENT))
            block.height = 1 + block.quote + len(block.lines)

    def _index(self) -> None:
        self.rows = []
        self._first_row = {}
        for block in self.blocks:
            self._add_rows(block)

    def _add_rows(self, block: Block) -> None:
        self._first_row[block.key] = len(self.rows)
        if block.message_id is not None:
            self._by_id[block.message_id] = block
        self.rows.extend((block, line) for line in range(block.height))

    # -- changes ---------------------------------------------------------------------------
    def reset(self, messages: list[Message], first_unread_id: int | None) -> None:
        self.first_unread_id = first_unread_id
        self._by_id = {}
        self.blocks = self._blocks_for(messages, _NO_DAY)
        for block in self.blocks:
            self.measure(block)
        self._index()

    def relayout(self, width: int, compact: bool | None = None) -> None:
        """Wrap every block again (a new width or layout)."""
        self.width = width
        if compact is not None:
            self.compact = compact
        for block in self.blocks:
            self.measure(block)
        for block in self.tail:
            self.measure(block)
        self._index()
        self.tail_rows = [(b, line) for b in self.tail for line in range(b.height)]

    def append(self, messages: tuple[Message, ...]) -> None:
        new = self._blocks_for(messages, self._day(self._last_message_block()))
        for block in new:
            self.measure(block)
            self._add_rows(block)
        self.blocks.extend(new)

    def prepend(self, messages: tuple[Message, ...]) -> None:
        new = self._blocks_for(messages, _NO_DAY)
        for block in new:
            self.measure(block)
        old = self.blocks
        if new and old and old[0].kind == "day":
            last_new = next((b for b in reversed(new) if b.kind == "message"), None)
            if self._day(last_new) == self._day(old[0]):
                old = old[1:]
        self.blocks = new + old
        self._index()

    def update(self, messages: tuple[Message, ...]) -> None:
        """Loaded messages changed (edited, deleted): new blocks in their place."""
        changed = False
        for message in messages:
            old = self._by_id.get(message.id)
            if old is None:
                continue
            block = self._message_block(message)
            self.measure(block)
            index = self.blocks.index(old)
            self.blocks[index] = block
            changed = True
        if changed:
            self._index()

    def set_pending(self, items: list[OutboxItem]) -> None:
        keep = {block.key: block for block in self.tail}
        tail = []
        for item in items:
            block = keep.get(f"p{item.client_id}:{item.error or ''}") or self._pending_block(item)
            if block.key not in keep:
                self.measure(block)
            tail.append(block)
        self.tail = tail
        self.tail_rows = [(b, line) for b in tail for line in range(b.height)]

    # -- reading ------------------------------------------------------------------------------
    @property
    def height(self) -> int:
        return len(self.rows) + len(self.tail_rows)

    def row(self, index: int) -> tuple[Block, int] | None:
        if 0 <= index < len(self.rows):
            return self.rows[index]
        index -= len(self.rows)
        if 0 <= index < len(self.tail_rows):
            return self.tail_rows[index]
        return None

    def first_row_of(self, block: Block) -> int | None:
        row = self._first_row.get(block.key)
        return row if row is not None and self.rows[row][0] is block else None

    def block_of_message(self, message_id: int) -> Block | None:
        return self._by_id.get(message_id)


class _NoDay:
    """Before the first block: any day differs from it."""


_NO_DAY = _NoDay()
