"""The status line: who I am, whether the server is reachable, what waits to be sent.

It draws the core's connection state (``connected``, ``connecting``, ``offline``
while the server cannot be reached, ``server trouble`` with the time of the next
try) and the outbox counts. A one-second timer only redraws a countdown: no I/O.
"""

from __future__ import annotations

import time

from rich.text import Text
from textual.reactive import reactive
from textual.widgets import Static

from tui.core.connection import ConnectionState
from tui.text import one_line


class StatusBar(Static):
    DEFAULT_CSS = """
    StatusBar {
        height: 1;
        width: 1fr;
    }
    """

    connection: reactive[ConnectionState] = reactive(ConnectionState("connecting"))
    pending: reactive[int] = reactive(0)
    failed: reactive[int] = reactive(0)
    note: reactive[str] = reactive("")

    def __init__(self, username: str, display_name: str = "", **kwargs: object) -> None:
        super().__init__("", markup=False, **kwargs)  # type: ignore[arg-type]
        self.username = username
        self.display_name = display_name

    def on_mount(self) -> None:
        self.set_interval(1.0, self._tick)
        self._draw()

    def _tick(self) -> None:
        if self.connection.retry_at is not None:
            self._draw()

    @property
    def state(self) -> str:
        return self.connection.state

    @property
    def connection_text(self) -> str:
        state = self.connection
        if state.state == "trouble":
            seconds = max(0, round((state.retry_at or 0) - time.monotonic()))
            return f"server trouble, retrying in {seconds} s"
        if state.state == "offline":
            return "offline, reconnecting\u2026"
        return state.state

    def render_text(self) -> Text:
        who = one_line(self.username)
        if self.display_name and self.display_name != self.username:
            who = f"{who} ({one_line(self.display_name)})"
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(" ")
        text.append(who, style="bold")
        text.append(" \u00b7 ")
        marker = {"connected": "\u25cf ", "connecting": "\u25cb "}.get(self.state, "\u00d7 ")
        text.append(marker + self.connection_text)
        if self.pending:
            text.append(f" \u00b7 {self.pending} pending")
        if self.failed:
            text.append(f" \u00b7 {self.failed} not sent (F7)", style="bold")
        if self.note:
            text.append(f" \u00b7 {self.note}")
        return text

    def _draw(self) -> None:
        self.update(self.render_text())

    def watch_connection(self) -> None:
        self._draw()

    def watch_pending(self) -> None:
        self._draw()

    def watch_failed(self) -> None:
        self._draw()

    def watch_note(self) -> None:
        self._draw()
