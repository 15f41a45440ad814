"""The status line: who I am, the connection state, and how many messages wait to be sent.

The state comes from the main screen's loops (``connected``, ``reconnecting``
with the time of the next attempt, ``offline`` while an attempt after a failure
is in flight). A one-second timer only redraws the countdown: no I/O here.
"""

from __future__ import annotations

import time

from rich.text import Text
from textual.reactive import reactive
from textual.widgets import Static

from tui.formatting import safe


class StatusBar(Static):
    DEFAULT_CSS = """
    StatusBar {
        height: 1;
        width: 1fr;
    }
    """

    state: reactive[str] = reactive("connecting")
    retry_at: reactive[float | None] = reactive(None)
    pending: reactive[int] = reactive(0)
    note: reactive[str] = reactive("")

    def __init__(self, username: str, display_name: str = "", **kwargs: object) -> None:
        super().__init__("", markup=False, **kwargs)  # type: ignore[arg-type]
        self.username = username
        self.display_name = display_name

    def on_mount(self) -> None:
        self.set_interval(1.0, self._tick)
        self._draw()

    def _tick(self) -> None:
        if self.state == "reconnecting":
            self._draw()

    def set_state(self, state: str, retry_at: float | None = None) -> None:
        self.state = state
        self.retry_at = retry_at

    @property
    def connection_text(self) -> str:
        if self.state == "reconnecting" and self.retry_at is not None:
            seconds = max(0, round(self.retry_at - time.monotonic()))
            if seconds <= 0:
                return "offline"
            return f"reconnecting in {seconds} s"
        return self.state

    def render_text(self) -> Text:
        who = safe(self.username)
        if self.display_name and self.display_name != self.username:
            who = f"{who} ({safe(self.display_name)})"
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(" ")
        text.append(who, style="bold")
        text.append(" · ")
        marker = {"connected": "● ", "connecting": "○ "}.get(self.state, "\u00d7 ")
        text.append(marker + self.connection_text)
        if self.pending:
            text.append(f" · {self.pending} pending")
        if self.note:
            text.append(f" · {self.note}")
        return text

    def _draw(self) -> None:
        self.update(self.render_text())

    def watch_state(self) -> None:
        self._draw()

    def watch_retry_at(self) -> None:
        self._draw()

    def watch_pending(self) -> None:
        self._draw()

    def watch_note(self) -> None:
        self._draw()
