"""The chat's text is laid out for the width it is drawn in, scrollbar or not.

Found by a QA pass: a message that makes the chat overflow brings the vertical
scrollbar, which takes one column, with no Resize event; the lines laid out before
were then drawn one column narrower, and every wrapped line lost its last character
under the scrollbar until the chat was laid out again (reopened, an edit).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import LiveServer
from tui.widgets.chat_log import ChatLog

from .conftest import api, app_for, befriend, open_chat, read_all, wait_for

pytestmark = pytest.mark.anyio

LONG = "".join(f"{n:03d}|" for n in range(60))  # 240 characters, wrapped on any width


def shown(log: ChatLog) -> str:
    """The chat's rows, each stripped of its indent, run together."""
    return "".join(line.strip() for line in log.screen_lines())


async def test_wrapped_lines_keep_every_character_when_the_scrollbar_appears(
    server: LiveServer, users: dict[str, str], tmp_path: Path
) -> None:
    befriend(server, users, "alice", "bob")
    with api(server.url, "bob", users["bob"]) as bob:
        bob.send("alice", "first")
    read_all(server, users, "alice", "bob")
    app = app_for(server.url, tmp_path, user="alice", token=users["alice"])
    async with app.run_test(size=(80, 24)) as pilot:
        log = await open_chat(pilot, app, "bob")
        await wait_for(pilot, lambda: "first" in shown(log), "the first message")
        assert log.max_scroll_y == 0, "no scrollbar yet"
        sent = 0
        with api(server.url, "bob", users["bob"]) as bob:
            while log.max_scroll_y == 0:  # fill the chat until it overflows
                bob.send("alice", LONG)
                sent += 1
                await wait_for(
                    pilot,
                    lambda n=1 + sent: len(log.conversation.messages) == n,  # type: ignore[union-attr]
                    f"message {sent} shown",
                )
                await pilot.pause()
        await wait_for(pilot, lambda: log.scrollbars_enabled[0], "the scrollbar")
        await pilot.pause()
        assert LONG in shown(log), "\n".join(log.screen_lines())
        assert log.chat_layout.width == log.scrollable_content_region.width
