"""SVG snapshots at 80x24, made deterministic: a fixed clock (and so a fixed zone),
no cursor blink, fixed message data. Update with ``pytest --snapshot-update`` after
checking the pictures by eye."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.app import App, ComposeResult
from textual.pilot import Pilot
from textual.widgets import Input

from tests.support import LiveServer
from tui.outbox import OutboxItem
from tui.screens.main import MainScreen
from tui.widgets.chat_log import ChatLog
from tui.widgets.friend_list import FriendList

from .conftest import FIXED_NOW, app_for, befriend, fixed_clock, wait_for

NOW = FIXED_NOW.int_timestamp
MESSAGES: list[dict[str, Any]] = [
    {"id": 1, "author": "bob", "message": "last year's hello", "date_sent": NOW - 400 * 86400},
    {"id": 2, "author": "alice", "message": "yesterday: see you", "date_sent": NOW - 86400},
    {
        "id": 3,
        "author": "bob",
        "message": "[bold]not markup[/bold] \x1b[2J",
        "date_sent": NOW - 3600,
    },
    {
        "id": 4,
        "author": "alice",
        "message": "a long line that has to wrap inside the chat pane, " * 3,
        "date_sent": NOW - 300,
    },
    {"id": 5, "author": "bob", "message": "just now", "date_sent": NOW - 5},
]


class ChatLogHarness(App[None]):
    """The chat log alone, on a fixed model."""

    def compose(self) -> ComposeResult:
        yield ChatLog("alice", clock=fixed_clock, id="log")

    def on_mount(self) -> None:
        log = self.query_one(ChatLog)
        log.open("bob", "Bob")
        log.set_history(MESSAGES, has_more=True)
        pending = OutboxItem(to="bob", text="on its way", client_id="c1", created=NOW)
        failed = OutboxItem(to="bob", text="refused", client_id="c2", created=NOW, error="blocked")
        log.set_pending([pending, failed])


def no_blink(pilot: Pilot[Any]) -> None:
    for field in pilot.app.query(Input):
        field.cursor_blink = False


def test_snapshot_chat_log(snap_compare: Any) -> None:
    assert snap_compare(ChatLogHarness(), terminal_size=(80, 24))


def test_snapshot_sign_in(snap_compare: Any, tmp_path: Path) -> None:
    app = app_for("http://127.0.0.1:5000", tmp_path, clock=fixed_clock)
    assert snap_compare(app, terminal_size=(80, 24), run_before=no_blink)


@pytest.mark.usefixtures("users")
def test_snapshot_main_screen(snap_compare: Any, server: LiveServer, tmp_path: Path) -> None:
    users: dict[str, str] = {}
    from tests.support import register

    for name in ("erin", "frank", "grace"):
        users[name] = register(server.url, name)
    befriend(server, users, "erin", "frank", "grace")
    app = app_for(server.url, tmp_path, user="erin", token=users["erin"], clock=fixed_clock)

    async def ready(pilot: Pilot[Any]) -> None:
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen), "the main screen")
        friends = app.screen.query_one(FriendList)
        await wait_for(pilot, lambda: len(friends.friends) == 2, "friends listed")
        await pilot.press("enter")
        log = app.screen.query_one(ChatLog)
        await wait_for(pilot, lambda: log.placeholder.startswith("No messages"), "chat open")
        no_blink(pilot)
        await pilot.pause()

    assert snap_compare(app, terminal_size=(80, 24), run_before=ready)
