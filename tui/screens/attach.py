"""The attach dialog (Ctrl+O in a chat): type a file's path, with completion; Enter sends it.

Tab completes the path from the file system as a shell does (``~`` is the home
folder; several matches complete to what they share and are listed under the
field). Enter hands the path to :meth:`SyncCore.send_file`, which checks it and
queues the file in the outbox like a message (sent once, with its ``client_id``,
now or when the server is back); a path that cannot be sent says why in the
dialog and stays as typed. The composer's text is left alone: the file goes on
its own, the draft stays for the next message.

:func:`complete_path` is plain Python (no Textual) so it is tested alone.
"""

from __future__ import annotations

import os

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Footer, Input, Static

from tui.core.outbox import OutboxFull
from tui.core.sync import SyncCore
from tui.text import fit, one_line

SHOWN_CHOICES = 8
"""Matches listed under the field after a Tab that fits several."""
WIDTH = 56
"""The dialog's inside width (its rows end with an ellipsis past it)."""


def _entries(folder: str) -> list[tuple[str, bool]]:
    """(name, is a folder) of what ``folder`` holds, sorted; [] if it cannot be listed."""
    try:
        with os.scandir(folder or ".") as found:
            entries = []
            for entry in found:
                try:
                    is_dir = entry.is_dir()
                except OSError:
                    is_dir = False
                entries.append((entry.name, is_dir))
    except OSError:
        return []
    return sorted(entries)


def complete_path(typed: str) -> tuple[str, list[str]]:
    """Complete ``typed`` as a shell's Tab does: (the new text, the matches it chose from).

    The typed part stays as typed (``~`` is not expanded in the field); one match
    completes whole (a folder with a ``/`` after it), several complete to their common
    start. Hidden files are offered only when the typed name starts with a dot."""
    if typed.startswith("~") and "/" not in typed:
        home = os.path.expanduser(typed)
        return (typed + "/", []) if home != typed else (typed, [])
    expanded = os.path.expanduser(typed)
    folder, partial = os.path.split(expanded)
    matches = [
        (name, is_dir)
        for name, is_dir in _entries(folder)
        if name.startswith(partial) and (partial.startswith(".") or not name.startswith("."))
    ]
    if not matches:
        return typed, []
    names = [name + ("/" if is_dir else "") for name, is_dir in matches]
    common = names[0]
    for name in names[1:]:
        while not name.startswith(common):
            common = common[:-1]
    return typed[: len(typed) - len(partial)] + common, names


class PathField(Input):
    """The path field: Tab completes instead of moving the focus."""

    BINDINGS = [
        Binding("tab", "complete", "Complete", tooltip="Complete the path", id="attach.complete")
    ]

    def action_complete(self) -> None:
        screen = self.screen
        if isinstance(screen, AttachDialog):
            screen.complete()


class AttachDialog(ModalScreen[str | None]):
    """Send a file to ``peer``: dismisses with the queued file's path, or None (Esc)."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="attach.cancel")]

    def __init__(self, core: SyncCore, peer: str, path: str = "") -> None:
        super().__init__()
        self.core = core
        self.peer = peer
        self.initial = path

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(
                Text(fit(f"Send a file to @{one_line(self.peer)}", WIDTH)), classes="dialog-title"
            )
            yield PathField(
                self.initial, placeholder="path of the file (~ is your home)", id="attach-path"
            )
            yield Static(
                "Tab completes \u00b7 Enter sends \u00b7 Esc cancels", classes="dialog-hint"
            )
            yield Static("", id="attach-choices", classes="dialog-hint", markup=False)
            yield Static("", classes="dialog-error", markup=False)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self._show(self.query_one("#attach-choices", Static), "")
        self.show_error("")
        field = self.query_one(PathField)
        field.focus()
        field.cursor_position = len(field.value)

    @property
    def field(self) -> PathField:
        return self.query_one(PathField)

    def show_error(self, text: str) -> None:
        self._show(self.query_one(".dialog-error", Static), text)

    @staticmethod
    def _show(line: Static, text: str) -> None:
        line.display = bool(text)  # no empty rows in a small dialog
        line.update(text)

    def complete(self) -> None:
        field = self.field
        text, choices = complete_path(field.value)
        field.value = text
        field.cursor_position = len(text)
        listed = self.query_one("#attach-choices", Static)
        self.show_error("" if choices or not field.value else "Nothing there starts so.")
        if len(choices) > 1:
            more = len(choices) - SHOWN_CHOICES
            shown = "  ".join(one_line(c) for c in choices[:SHOWN_CHOICES])
            self._show(listed, fit(shown + (f"  (+{more})" if more > 0 else ""), WIDTH))
        else:
            self._show(listed, "")

    @on(Input.Submitted, "#attach-path")
    def _submit(self, event: Input.Submitted) -> None:
        event.stop()
        try:
            item = self.core.send_file(self.peer, event.value)
        except ValueError as why:
            self.show_error(f"Not sent: {why}.")
            return
        except OutboxFull as full:
            self.show_error(full.message)
            return
        self.dismiss(item.path)

    def action_cancel(self) -> None:
        self.dismiss(None)
