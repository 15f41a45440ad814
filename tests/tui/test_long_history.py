"""Long conversations: 10,000 messages open fast (only the tail is fetched), PageUp
loads older pages on demand, and a resize re-wraps the text."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import LiveServer
from tui.core.sync import PAGE
from tui.screens.main import MainScreen
from tui.widgets.chat_log import ChatLog
from tui.widgets.friend_list import FriendList

from .conftest import api, app_for, befriend, fill, open_chat, wait_for

pytestmark = pytest.mark.anyio

LONG = 10_000


async def test_ten_thousand_messages_open_fast_and_scroll_back_on_demand(
    server: LiveServer, users: dict[str, str], tmp_path: Path
) -> None:
    befriend(server, users, "alice", "bob")
    fill(server, users, LONG)
    app = app_for(server.url, tmp_path, user="alice", token=users["alice"])
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen), "the main screen")
        friends = app.screen.query_one(FriendList)
        await wait_for(pilot, lambda: "bob" in friends.friends, "bob listed")
        log = app.screen.query_one(ChatLog)
        await pilot.press("enter")
        await wait_for(pilot, lambda: log.message_ids, "the tail loaded")
        await pilot.pause()
        assert len(log.message_ids) == PAGE, "only the tail is downloaded to open a chat"
        assert log.has_more_older
        lines = log.text_lines()
        assert any(line.strip() == f"message {LONG - 1}" for line in lines)
        assert log.scroll_offset.y == log.max_scroll_y, "opened at the newest message"

        first_page_oldest = log.message_ids[0]
        for _ in range(40):  # PageUp to the top: reaching it asks for the previous page
            if log.scroll_offset.y == 0 or len(log.message_ids) > PAGE:
                break
            await pilot.press("pageup")
        await wait_for(pilot, lambda: len(log.message_ids) == 2 * PAGE, "an older page")
        assert log.message_ids[0] < first_page_oldest
        assert log.scroll_offset.y > 0, "the view stays on what was read, not the new top"
        assert log.message_ids == sorted(log.message_ids)
        assert len(set(log.message_ids)) == len(log.message_ids)


async def test_resize_rewraps_the_messages(
    server: LiveServer, users: dict[str, str], tmp_path: Path
) -> None:
    befriend(server, users, "alice", "bob")
    words = " ".join(f"word{number}" for number in range(60))
    with api(server.url, "bob", users["bob"]) as bob:
        bob.send("alice", words)
    app = app_for(server.url, tmp_path, user="alice", token=users["alice"])
    async with app.run_test(size=(80, 24)) as pilot:
        log = await open_chat(pilot, app, "bob")
        await wait_for(pilot, lambda: log.message_ids, "history loaded")
        narrow = log.text_lines()
        assert max(len(line) for line in narrow) <= log.scrollable_content_region.width

        await pilot.resize_terminal(140, 40)
        await wait_for(pilot, lambda: log.scrollable_content_region.width > 100, "the resize")
        await pilot.pause()
        wide = log.text_lines()
        assert len(wide) < len(narrow), "wider lines: the same text takes fewer lines"
        assert max(len(line) for line in wide) > 80
        joined = " ".join(" ".join(wide).split())
        assert words in joined, "every word is still there, in order"
