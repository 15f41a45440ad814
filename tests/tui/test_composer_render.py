"""What the terminal is sent for the message box: every key the user typed is drawn.

Pilot at 80x24 against a real server on 127.0.0.1. ``Terminal`` keeps the frame
the app actually wrote (each update Textual would send to a real terminal, applied
to a grid of cells), so a test sees a stale frame the way a user does. Pilot's own
``pause`` repaints the screen by hand, which hides exactly this kind of bug: after
the burst these tests wait with plain sleeps on a condition, never with ``pause``.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from textual import events
from textual._compositor import ChopsUpdate, LayoutUpdate
from textual.screen import Screen

from tests.support import LiveServer
from tui.app import PairchatApp
from tui.keys import TerminalKeys
from tui.widgets.chat_log import ChatLog
from tui.widgets.composer import Composer

from .conftest import app_for, befriend, open_chat, type_text, wait_for

pytestmark = pytest.mark.anyio


class Terminal:
    """The cells a terminal shows after the updates ``app`` wrote to it."""

    def __init__(self, app: PairchatApp, size: tuple[int, int]) -> None:
        width, height = size
        self.rows = [[" "] * width for _ in range(height)]
        self._app = app
        self._display = app._display
        app._display = self._write  # type: ignore[method-assign]

    def _write(self, screen: Screen[Any], renderable: object) -> None:
        if not self._app._batch_count:  # as Textual: nothing is written inside a batch
            if isinstance(renderable, LayoutUpdate):
                for y, line in enumerate(renderable.strips, renderable.region.y):
                    x = renderable.region.x
                    for strip in line:
                        x = self._put(y, x, strip.text, 0, len(self.rows[0]))
            elif isinstance(renderable, ChopsUpdate):
                for y, x1, x2 in renderable.spans:
                    for x, strip in renderable.chops[y].items():
                        if strip is not None:
                            self._put(y, x, strip.text, x1, x2)
        self._display(screen, renderable)

    def _put(self, y: int, x: int, text: str, first: int, end: int) -> int:
        row = self.rows[y]
        for char in text:
            if first <= x < min(end, len(row)):
                row[x] = char
            x += 1
        return x

    def row(self, y: int) -> str:
        return "".join(self.rows[y])


def parsed_keys(data: str) -> list[events.Event]:
    """The events the app's terminal parser makes of ``data``, as a terminal sends it."""
    parser = TerminalKeys()
    return [*parser.feed(data), *parser.feed("")]


async def send_burst(app: PairchatApp, data: str) -> None:
    """``data`` parsed and queued all at once, as tmux ``send-keys`` delivers a burst;
    returns when every key has been handled (without repainting the screen by hand)."""
    driver = app._driver
    assert driver is not None
    for event in parsed_keys(data):
        event.set_sender(app)
        driver.send_message(event)
    await asyncio.sleep(0)
    await app.input.drained()


async def drawn(terminal: Terminal, y: int, x: int, width: int, want: str) -> str:
    """What the terminal shows at row ``y`` from ``x``, once it reads ``want`` or after
    a few seconds (a stale frame is never redrawn by itself)."""
    deadline = time.monotonic() + 5
    while (shown := terminal.row(y)[x : x + width].strip()) != want:
        if time.monotonic() > deadline:
            break
        await asyncio.sleep(0.05)
    return shown


async def test_backspaces_and_shift_tab_in_one_burst_are_all_drawn(
    server: LiveServer, users: dict[str, str], tmp_path: Path
) -> None:
    """tmux at 80x24: ``abcdef``, then BSpace BSpace BSpace BTab in one burst left
    ``abcde`` on screen while the box held ``abc``: the frames of a burst are drawn at
    its end, and nothing told the screen to draw once the focus had left the box (no
    cursor blink to wake it) — until the next key."""
    befriend(server, users, "alice", "bob")
    app = app_for(server.url, tmp_path, user="alice", token=users["alice"])
    terminal = Terminal(app, (80, 24))
    async with app.run_test(size=(80, 24)) as pilot:
        log = await open_chat(pilot, app, "bob")
        composer = app.screen.query_one(Composer)
        box = composer.content_region
        await type_text(pilot, "abcdef")
        await wait_for(
            pilot, lambda: terminal.row(box.y)[box.x : box.right].strip() == "abcdef", "drawn"
        )

        await send_burst(app, "\x7f\x7f\x7f\x1b[Z")  # BSpace BSpace BSpace BTab

        assert composer.text == "abc"
        assert isinstance(app.focused, ChatLog) and app.focused is log
        assert await drawn(terminal, box.y, box.x, box.width, "abc") == "abc"
