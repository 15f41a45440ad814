"""SVG snapshots at 80x24, made deterministic: a fixed clock (and so a fixed zone),
no cursor blink, fixed message data. Update with ``pytest --snapshot-update`` after
checking the pictures by eye."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.app import App, ComposeResult
from textual.pilot import Pilot
from textual.widgets import Input, TextArea

from tests.support import LiveServer
from tui.client.models import Message
from tui.core.conversation import Conversation
from tui.core.outbox import OutboxItem
from tui.screens.main import MainScreen
from tui.widgets.chat_log import ChatLog
from tui.widgets.friend_list import FriendList

from .conftest import FIXED_NOW, app_for, befriend, fixed_clock, settled, wait_for

NOW = FIXED_NOW.int_timestamp
MESSAGES = [
    Message(1, "bob", "last year's hello", NOW - 400 * 86400),
    Message(2, "alice", "yesterday: see you", NOW - 86400),
    Message(3, "bob", "[bold]not markup[/bold] \x1b[2J", NOW - 3600),
    Message(4, "alice", "a long line that has to wrap inside the chat pane, " * 3, NOW - 300),
    Message(
        5,
        "bob",
        "wide: \u4e2d\u6587\u5b57 \u2764\ufe0f \U0001f44d\U0001f3fd "
        "\U0001f468\u200d\U0001f469\u200d\U0001f467 end",
        NOW - 200,
    ),
    Message(6, "bob", "bidi \u202eevil\u202c and zero\u200bwidth", NOW - 100),
    Message(
        7,
        "bob",
        "see https://example.org/a/really/long/path/that/folds/over/lines ok",
        NOW - 5,
        reactions=(("\U0001f44d", ("alice", "bob")), ("\u2764\ufe0f", ("bob",))),
    ),
]


class ChatLogHarness(App[None]):
    """The chat log alone, on a fixed conversation."""

    def __init__(self, compact: bool = False) -> None:
        super().__init__()
        self.compact = compact

    def compose(self) -> ComposeResult:
        yield ChatLog("alice", clock=fixed_clock, compact=self.compact, id="log")

    def on_mount(self) -> None:
        log = self.query_one(ChatLog)
        chat = Conversation("bob", "alice")
        chat.merge(MESSAGES)
        chat.has_more_older = True
        chat.loaded = True
        log.show(chat)
        log.loaded()
        pending = OutboxItem(to="bob", text="on its way", client_id="c1", created=NOW)
        failed = OutboxItem(to="bob", text="refused", client_id="c2", created=NOW, error="blocked")
        log.set_pending([pending, failed])


def no_blink(pilot: Pilot[Any]) -> None:
    for field in pilot.app.query(Input):
        field.cursor_blink = False
    for area in pilot.app.query(TextArea):
        area.cursor_blink = False


async def harness_ready(pilot: Pilot[Any]) -> None:
    await settled(pilot.app)


def test_snapshot_chat_log(snap_compare: Any) -> None:
    assert snap_compare(ChatLogHarness(), terminal_size=(80, 24), run_before=harness_ready)


def test_snapshot_chat_log_compact(snap_compare: Any) -> None:
    app = ChatLogHarness(compact=True)
    assert snap_compare(app, terminal_size=(80, 24), run_before=harness_ready)


def test_snapshot_sign_in(snap_compare: Any, tmp_path: Path) -> None:
    app = app_for("http://127.0.0.1:5000", tmp_path, clock=fixed_clock)

    async def ready(pilot: Pilot[Any]) -> None:
        await wait_for(pilot, lambda: app.focused is not None, "the username field focused")
        assert app.focused is not None and app.focused.id == "username"
        no_blink(pilot)
        await settled(app)

    assert snap_compare(app, terminal_size=(80, 24), run_before=ready)


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
        friends.focus()
        await wait_for(pilot, lambda: app.focused is friends, "the friend list focused")
        no_blink(pilot)
        await settled(app)

    assert snap_compare(app, terminal_size=(80, 24), run_before=ready)
