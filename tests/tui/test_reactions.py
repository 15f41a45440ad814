"""Reactions in the TUI, against the real server: the peer's show up live under the
message with counts (mine marked), ``+`` opens the picker, choosing the one I have removes it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import LiveServer, http
from tui.screens.dialogs import ReactionPicker
from tui.screens.help import HelpScreen
from tui.widgets.chat_log import ChatLog

from .conftest import api, app_for, befriend, open_chat, wait_for

pytestmark = pytest.mark.anyio


def reactions(server: LiveServer, users: dict[str, str], me: str, other: str) -> list[dict]:  # type: ignore[type-arg]
    reply = http.post(
        f"{server.url}/get_message_history",
        data={"user_one": me, "user_two": other},
        headers={"Authorization": f"Bearer {users[me]}"},
    )
    return [m["reactions"] for m in reply.json()["history"]]


def shown(log: ChatLog, text: str) -> bool:
    return any(text in line for line in log.text_lines())


async def test_reactions_live_and_the_picker_sets_changes_and_removes(
    server: LiveServer, users: dict[str, str], tmp_path: Path
) -> None:
    befriend(server, users, "alice", "bob")
    with api(server.url, "bob", users["bob"]) as bob:
        sent = bob.send("alice", "lunch at noon?")
    app = app_for(server.url, tmp_path, user="alice", token=users["alice"])
    async with app.run_test(size=(80, 24)) as pilot:
        log = await open_chat(pilot, app, "bob")
        await wait_for(pilot, lambda: shown(log, "lunch at noon?"), "the message")
        with api(server.url, "bob", users["bob"]) as bob:  # the peer reacts: live
            bob.react("alice", sent.id, "\U0001f44d")
        await wait_for(pilot, lambda: shown(log, "\U0001f44d 1"), "their reaction, live")
        log.focus()
        await pilot.press("up")  # select the message
        await pilot.press("plus")
        await wait_for(pilot, lambda: isinstance(app.screen, ReactionPicker), "the picker")
        await pilot.press("1")  # 👍, as bob did
        await wait_for(pilot, lambda: shown(log, "[\U0001f44d 2]"), "mine, marked")
        assert reactions(server, users, "alice", "bob") == [{"\U0001f44d": ["alice", "bob"]}]
        await pilot.press("plus")
        await wait_for(pilot, lambda: isinstance(app.screen, ReactionPicker), "the picker")
        await pilot.press("2")  # ❤️: a change
        await wait_for(pilot, lambda: shown(log, "[\u2764 1]"), "changed")
        assert shown(log, "\U0001f44d 1")
        await pilot.press("plus")
        await wait_for(pilot, lambda: isinstance(app.screen, ReactionPicker), "the picker")
        await pilot.press("2")  # the one I have: removed
        await wait_for(pilot, lambda: not shown(log, "\u2764"), "removed")
        assert reactions(server, users, "alice", "bob") == [{"\U0001f44d": ["bob"]}]
        await pilot.press("plus")  # type one
        await wait_for(pilot, lambda: isinstance(app.screen, ReactionPicker), "the picker")
        app.screen.query_one("#react-input").insert_text_at_cursor("\U0001f389")  # type: ignore[attr-defined]
        await pilot.press("enter")
        await wait_for(pilot, lambda: shown(log, "[\U0001f389 1]"), "a typed one")
        await pilot.press("plus")
        await wait_for(pilot, lambda: isinstance(app.screen, ReactionPicker), "the picker")
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, ReactionPicker), "closed")
        assert reactions(server, users, "alice", "bob") == [
            {"\U0001f389": ["alice"], "\U0001f44d": ["bob"]}
        ]
        await pilot.press("f1")  # Help lists the key
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), "help")
        help_text = app.screen.text()  # type: ignore[attr-defined]
        assert "React to the selected message" in help_text and "+" in help_text
