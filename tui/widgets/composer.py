"""The composer: a multi-line input that sends on Enter and never loses or misroutes text.

- **Enter sends**; Alt+Enter and Ctrl+J insert a newline (Shift+Enter too, where
  the terminal reports it). It grows to a few lines, then scrolls.
- **Keys are handled in the order they arrive.** Textual runs a bound key's
  action only after the key has bubbled up to the app, so an ``Input`` applies
  Enter *after* the characters typed behind it in one burst (``one⏎two`` sent
  ``onetwo``). Here Enter and the newline keys are handled in ``_on_key``, in the
  widget's own queue, between the characters around them; the text is captured
  when Enter is read, with the chat it was typed for.
- **A paste is text, never a send**: a bracketed paste inserts every line.
- **Nothing is dropped for being long**: over the server's limit the text stays
  and :class:`TooLong` says by how much.
- ↑ in an empty composer recalls what I sent in this chat (↓ goes back);
  Ctrl+E asks for ``$EDITOR`` (:class:`EditorRequested`), Ctrl+O for a file to send
  (:class:`AttachRequested`; the box keeps its text).

The composer belongs to one chat at a time (``peer``); the pane swaps drafts
when the chat changes. What is drawn goes through
:func:`~tui.text.same_width`, so emoji sequences cannot shift the line.
"""

from __future__ import annotations

from collections.abc import Callable

from rich.segment import Segment
from textual import events
from textual.binding import Binding
from textual.message import Message
from textual.strip import Strip
from textual.widgets import TextArea

from tui.core.drafts import MAX_DRAFT
from tui.text import same_width

SEND_KEYS = frozenset({"enter"})
NEWLINE_KEYS = frozenset({"alt+enter", "ctrl+j", "shift+enter", "newline"})


class Composer(TextArea):
    DEFAULT_CSS = """
    Composer {
        height: auto;
        min-height: 3;
        max-height: 7;
    }
    """

    BINDINGS = [
        # Enter and the newline keys are read in _on_key (in order); these entries
        # name them for the footer and the help screen.
        Binding("enter", "send", "Send", tooltip="Send the message", id="composer.send"),
        Binding(
            "ctrl+j",
            "newline",
            "Newline",
            tooltip="A new line in the message (also Alt+Enter, Shift+Enter)",
            id="composer.newline",
        ),
        Binding(
            "ctrl+e",
            "editor",
            "Editor",
            tooltip="Write the message in $VISUAL or $EDITOR",
            id="composer.editor",
        ),
        Binding(
            "escape",
            "escape",
            "Friends",
            tooltip="Cancel an edit or a reply; else back to the friend list",
            id="composer.friends",
        ),
        Binding(
            "ctrl+o",
            "attach",
            "Attach",
            tooltip="Send a file: type its path (Tab completes); the message box keeps its text",
            id="composer.attach",
        ),
        # TextArea selects with F6/F7; here they keep their meaning on the main screen.
        Binding("f6", "screen.unblock", "Unblock", show=False, id="composer.unblock"),
        Binding("f7", "screen.unsent", "Unsent", show=False, id="composer.unsent"),
        # PageUp/PageDown scroll the messages, not the few lines of the message box.
        Binding("pageup", "screen.older", "Older", show=False, id="composer.older"),
        Binding("pagedown", "screen.newer", "Newer", show=False, id="composer.newer"),
        Binding(
            "up",
            "edit_last",
            "Edit last",
            show=False,
            tooltip="In an empty message box: edit your last message (again: the one before)",
            id="composer.edit_last",
        ),
        Binding(
            "alt+up",
            "recall_older",
            "Earlier message",
            show=False,
            tooltip="Your earlier messages in this chat, to send again (Alt+Down goes back)",
            id="composer.recall",
        ),
        Binding(
            "alt+down",
            "recall_newer",
            "Later message",
            show=False,
            tooltip="Back towards the empty box, while recalling",
            id="composer.recall_newer",
        ),
    ]

    class Submitted(Message):
        """Enter with text: send ``text`` to ``peer`` (all read when Enter was pressed);
        ``edit`` is the id of my message it replaces, ``reply_to`` the one it answers."""

        def __init__(
            self,
            composer: Composer,
            peer: str,
            text: str,
            edit: int | None = None,
            reply_to: int | None = None,
        ) -> None:
            super().__init__()
            self.composer = composer
            self.peer = peer
            self.text = text
            self.edit = edit
            self.reply_to = reply_to

    class EditLast(Message):
        """↑ in an empty box (or on an unchanged edit): edit my message before ``before``."""

        def __init__(self, before: int | None) -> None:
            super().__init__()
            self.before = before

    class ModeChanged(Message):
        """Editing or replying started or ended (the pane shows a line about it)."""

    class TooLong(Message):
        def __init__(self, over: int) -> None:
            super().__init__()
            self.over = over

    class EditorRequested(Message):
        pass

    class AttachRequested(Message):
        """Ctrl+O: ask for a file to send in this chat."""

    class Refused(Message):
        """Enter with text the outbox cannot take (``reason``): the text stays in the box."""

        def __init__(self, reason: str) -> None:
            super().__init__()
            self.reason = reason

    class Cut(Message):
        """A paste or typing past :data:`MAX_DRAFT`: ``dropped`` characters were not kept."""

        def __init__(self, dropped: int) -> None:
            super().__init__()
            self.dropped = dropped

    def __init__(self, *, max_length: int, id: str | None = None) -> None:
        super().__init__(
            id=id,
            soft_wrap=True,
            tab_behavior="focus",
            show_line_numbers=False,
            compact=False,
            highlight_cursor_line=False,
        )
        self.max_length = max_length
        self.peer: str | None = None
        self.recall_source: Callable[[], list[str]] = list
        self.refusal: Callable[[str], str | None] = lambda peer: None
        """Why a message to this peer cannot be queued now (the outbox is full), or None."""
        self.files = True
        """Ctrl+O is offered (not in a door: there the pane says why it is not)."""
        self.editor = True
        """Ctrl+E is offered (an editor can start; else the pane says why it cannot)."""
        self._recall_index: int | None = None
        self._recalled = ""
        self.editing: int | None = None
        """The id of my message being edited, or None."""
        self.replying: int | None = None
        """The id of the message being answered, or None."""
        self._edit_original = ""
        self._stash = ""
        """What was in the box before an edit began: back when the edit ends."""

    # -- keys, in order ----------------------------------------------------------------
    async def _on_key(self, event: events.Key) -> None:
        if event.key in SEND_KEYS:
            event.stop()
            event.prevent_default()
            self.submit()
            return
        if event.key in NEWLINE_KEYS:
            event.stop()
            event.prevent_default()
            self.insert_text("\n")
            return
        if event.is_printable and self._room() <= 0:
            event.stop()
            event.prevent_default()
            self.post_message(self.Cut(1))
            return
        await super()._on_key(event)

    async def _on_paste(self, event: events.Paste) -> None:
        # Textual calls each class's _on_paste in turn: TextArea's inserts the paste
        # after this one, unless this one cuts it (prevent_default).
        room = self._room()
        if len(event.text) <= room:
            return
        event.stop()
        event.prevent_default()
        kept = event.text[: max(0, room)]
        if kept:
            self.insert_text(kept)
        self.post_message(self.Cut(len(event.text) - len(kept)))

    def _room(self) -> int:
        """Characters that still fit (what is selected would be replaced)."""
        return MAX_DRAFT - len(self.text) + len(self.selected_text)

    def load_bounded(self, text: str) -> None:
        """Replace the text with ``text`` (from ``$EDITOR``), cut at :data:`MAX_DRAFT` with
        the same notice as a paste."""
        if len(text) > MAX_DRAFT:
            self.post_message(self.Cut(len(text) - MAX_DRAFT))
        self.load_text(text[:MAX_DRAFT])

    def insert_text(self, text: str) -> None:
        start, end = self.selection
        result = self.replace(text, start, end, maintain_selection_offset=False)
        self.move_cursor(result.end_location)

    def submit(self) -> None:
        text = self.text
        if self.peer is None or not text.strip():
            return
        if len(text) > self.max_length:
            self.post_message(self.TooLong(len(text) - self.max_length))
            return
        reason = self.refusal(self.peer)
        if reason is not None:
            self.post_message(self.Refused(reason))
            return
        self.post_message(self.Submitted(self, self.peer, text, self.editing, self.replying))
        self._recall_index = None
        self._end_mode(restore=self.editing is not None)

    # -- edit and reply ----------------------------------------------------------------
    def start_edit(self, message_id: int, text: str) -> None:
        if self.editing is None:
            self._stash = self.text
        self.editing, self.replying = message_id, None
        self._edit_original = text
        self.load_text(text)
        self.move_cursor(self.document.end)
        self.post_message(self.ModeChanged())

    def start_reply(self, message_id: int) -> None:
        if self.editing is not None:
            self._end_mode(restore=True)
        self.replying = message_id
        self.post_message(self.ModeChanged())

    def _end_mode(self, restore: bool) -> None:
        was = self.editing is not None or self.replying is not None
        self.editing = self.replying = None
        self.load_text(self._stash if restore else "")
        self.move_cursor(self.document.end)
        self._stash = ""
        if was:
            self.post_message(self.ModeChanged())

    async def action_escape(self) -> None:
        if self.editing is not None:
            self._end_mode(restore=True)
        elif self.replying is not None:
            self.replying = None
            self.post_message(self.ModeChanged())
        else:
            await self.run_action("screen.escape")

    def action_edit_last(self) -> None:
        unchanged_edit = self.editing is not None and self.text == self._edit_original
        if unchanged_edit and self.cursor_location[0] == 0:
            self.post_message(self.EditLast(self.editing))
        elif not self.text and self.editing is None:
            self.post_message(self.EditLast(None))
        else:
            self.action_cursor_up()

    def action_send(self) -> None:
        self.submit()

    def action_newline(self) -> None:
        self.insert_text("\n")

    def action_editor(self) -> None:
        self.post_message(self.EditorRequested())

    def action_attach(self) -> None:
        self.post_message(self.AttachRequested())

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "attach":
            return self.files  # False: not in the footer; the pane's Ctrl+O says why
        if action == "editor":
            return self.editor  # False: not in the footer; the pane's Ctrl+E says why
        return super().check_action(action, parameters)

    # -- recall ------------------------------------------------------------------------
    def _recalling(self) -> bool:
        return self._recall_index is not None and self.text == self._recalled

    def action_recall_older(self) -> None:
        if self.text and not self._recalling():
            self.action_cursor_up()
            return
        if self._recalling() and self.cursor_location[0] > 0:
            self.action_cursor_up()
            return
        texts = self.recall_source()
        index = 0 if not self._recalling() else (self._recall_index or 0) + 1
        if index < len(texts):
            self._show_recalled(index, texts[index])

    def action_recall_newer(self) -> None:
        if not self._recalling() or self.cursor_location[0] < self.document.line_count - 1:
            self.action_cursor_down()
            return
        index = (self._recall_index or 0) - 1
        if index < 0:
            self._recall_index = None
            self.clear()
            return
        texts = self.recall_source()
        if index < len(texts):
            self._show_recalled(index, texts[index])

    def _show_recalled(self, index: int, text: str) -> None:
        self._recall_index = index
        self._recalled = text
        self.load_text(text)
        self.move_cursor(self.document.end)

    # -- drawing -----------------------------------------------------------------------
    def render_line(self, y: int) -> Strip:
        strip = super().render_line(y)
        if all(s.text.isascii() and s.text.isprintable() for s in strip if s.text):
            return strip
        return Strip(
            [Segment(same_width(s.text), s.style, s.control) for s in strip], strip.cell_length
        )
