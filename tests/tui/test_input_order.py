"""Unit: the ordered input's settle condition, on a bare Textual app (no server)."""

from __future__ import annotations

import asyncio

import pytest
from textual import events
from textual.app import App, ComposeResult
from textual.widgets import Static

import tui.input_order
from tui.input_order import OrderedInput

pytestmark = pytest.mark.anyio


class Busy(Static):
    """Handles each key slowly (an async handler that outlives the settle limit)."""

    release = asyncio.Event()

    async def on_key(self, event: events.Key) -> None:
        await self.release.wait()


class Harness(App[None]):
    def compose(self) -> ComposeResult:
        yield Busy("busy", id="busy")


async def test_a_widget_busy_past_the_settle_limit_does_not_crash_the_app(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The limit cancelled the wait's future; when the widget caught up, the callback
    set a result on it and the app died with InvalidStateError."""
    monkeypatch.setattr(tui.input_order, "SETTLE_LIMIT", 0.2)
    Busy.release = asyncio.Event()
    app = Harness()
    async with app.run_test() as pilot:
        busy = app.query_one(Busy)
        busy.post_message(events.Key("a", "a"))
        await OrderedInput(app, lambda event: asyncio.sleep(0)).settled()  # gives up
        Busy.release.set()
        await pilot.pause()
        await OrderedInput(app, lambda event: asyncio.sleep(0)).settled()
        assert app.is_running and app._exception is None
