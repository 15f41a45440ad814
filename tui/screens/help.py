"""The help screen (F1, or ``?`` outside a text field): every key, where it works.

Built from the ``BINDINGS`` of the classes themselves, with the user's keymap
(``[keymap]`` in config.toml, by binding id) applied, so it cannot drift from
what the keys really do. When signed in, a first "Connection" section says how
live updates come (the event stream, or the long-poll and why: the details of
the status line's "connected").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Footer, Static

from tui.text import key_label

EXTRA = {
    "Message box": [
        ("alt+enter, shift+enter", "New line (where the terminal sends them)"),
        ("tab / shift+tab", "Next / previous pane"),
    ],
}


def binding_rows(
    bindings: Iterable[BindingType], keymap: Mapping[str, str]
) -> list[tuple[str, str]]:
    rows = []
    for binding in bindings:
        if not isinstance(binding, Binding) or not binding.description:
            continue
        keys = keymap.get(binding.id or "", binding.key)
        rows.append((key_label(keys), binding.tooltip or binding.description))
    return rows


class HelpScreen(ModalScreen[None]):
    BINDINGS = [
        Binding("escape,f1,q", "close", "Close", id="help.close"),
    ]

    def __init__(self, sections: list[tuple[str, list[tuple[str, str]]]]) -> None:
        super().__init__()
        self.sections = sections

    def compose(self) -> ComposeResult:
        table = Table(box=None, show_header=False, padding=(0, 1), expand=True)
        table.add_column("key", style="bold", no_wrap=True)
        table.add_column("what it does")
        for title, rows in self.sections:
            table.add_row(Text(title, style="bold underline"), "")
            for keys, description in [*rows, *EXTRA.get(title, [])]:
                table.add_row(keys, description)
            table.add_row("", "")
        with VerticalScroll(classes="dialog help", id="help-keys"):
            yield Static("pairchat keys (\u2191 \u2193 PageDown to scroll)", classes="dialog-title")
            yield Static(table, id="help-table")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one("#help-keys").focus()

    def text(self) -> str:
        """Everything listed, as plain text (tests)."""
        return "\n".join(
            f"{title}: " + "; ".join(f"{keys} {what}" for keys, what in rows)
            for title, rows in self.sections
        )

    def action_close(self) -> None:
        self.dismiss(None)
