"""Pilot tests of the main screen at 80x24 against a real server on 127.0.0.1."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Input

from tests.support import LiveServer, register
from tui.screens.dialogs import AddFriendDialog, BlockDialog, UnblockDialog
from tui.screens.main import MainScreen
from tui.widgets.chat_log import ChatLog
from tui.widgets.composer import Composer
from tui.widgets.friend_list import FriendList
from tui.widgets.status_bar import StatusBar

from .conftest import api, app_for, befriend, open_chat, stored, type_text, wait_for

pytestmark = pytest.mark.anyio


async def test_open_bob_send_and_receive(
    server: LiveServer, users: dict[str, str], tmp_path: Path
) -> None:
    befriend(server, users, "alice", "bob", "carol")
    app = app_for(server.url, tmp_path, user="alice", token=users["alice"])
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen), "the main screen")
        friends = app.screen.query_one(FriendList)
        await wait_for(pilot, lambda: {"bob", "carol"} <= set(friends.friends), "friends listed")
        assert app.focused is friends
        status = app.screen.query_one(StatusBar)
        await wait_for(pilot, lambda: status.connection_text == "connected", "connected")
        friends.highlight("bob")
        await pilot.press("enter")
        log = app.screen.query_one(ChatLog)
        await wait_for(pilot, lambda: log.peer == "bob", "bob's chat open")
        assert app.focused is app.screen.query_one(Composer)

        await type_text(pilot, "hello bob [bold]not markup[/bold]")
        await pilot.press("enter")
        text = "hello bob [bold]not markup[/bold]"
        await wait_for(pilot, lambda: stored(server, users, "bob", "alice") == [text], "stored")
        await wait_for(pilot, lambda: not log.pending, "the pending marker to clear")
        assert sum(line.count(text) for line in log.text_lines()) == 1
        assert any(line.startswith("\u203a me") for line in log.text_lines())

        # Bob answers through the API: it appears with no key pressed.
        with api(server.url, "bob", users["bob"]) as bob:
            bob.send("alice", "hi alice, from the API")
        await wait_for(
            pilot,
            lambda: any("hi alice, from the API" in line for line in log.text_lines()),
            "bob's message on screen",
        )
        assert any(line.strip().startswith("bob \u00b7") for line in log.text_lines())


async def test_unread_count_rises_then_clears_when_opened(
    server: LiveServer, users: dict[str, str], tmp_path: Path
) -> None:
    befriend(server, users, "alice", "bob", "carol")
    app = app_for(server.url, tmp_path, user="alice", token=users["alice"])
    bells: list[int] = []
    app.bell = lambda: bells.append(1)  # type: ignore[method-assign]
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen), "the main screen")
        friends = app.screen.query_one(FriendList)
        await wait_for(pilot, lambda: "carol" in friends.friends, "carol listed")
        friends.highlight("bob")
        await pilot.press("enter")  # bob's chat is open; carol's is not
        with api(server.url, "carol", users["carol"]) as carol:
            carol.send("alice", "[red]one[/red]")
            carol.send("alice", "two")
        await wait_for(pilot, lambda: friends.friends["carol"].unread == 2, "carol unread 2")
        assert "(2)" in str(friends.get_option("carol").prompt)
        assert bells, "the terminal bell rang for a message in a chat that is not open"
        assert any("Carol" in n.message or "carol" in n.message for n in app._notifications)

        await pilot.press("ctrl+n")  # jump to the next chat with unread messages
        log = app.screen.query_one(ChatLog)
        await wait_for(pilot, lambda: log.peer == "carol", "carol's chat open")
        await wait_for(pilot, lambda: friends.friends["carol"].unread == 0, "unread cleared")
        assert any("[red]one[/red]" in line for line in log.text_lines())
        with api(server.url, "alice", users["alice"]) as alice:
            listed = {f.username: f.unread for f in alice.friends().friends}
        assert listed["carol"] == 0, "the server was told the chat was read"


async def test_add_friend_block_and_unblock(
    server: LiveServer, users: dict[str, str], tmp_path: Path
) -> None:
    app = app_for(server.url, tmp_path, user="alice", token=users["alice"])
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen), "the main screen")
        main = app.screen
        await pilot.press("f2")
        await wait_for(pilot, lambda: isinstance(app.screen, AddFriendDialog), "add dialog")
        await type_text(pilot, "nobody")
        await pilot.press("enter")
        error = app.screen.query_one(".dialog-error")
        await wait_for(pilot, lambda: "nobody" in str(error.render()), "inline error")
        await pilot.press(*["backspace"] * 6)
        await type_text(pilot, "dave")
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.screen is main, "dialog closed")
        log = main.query_one(ChatLog)
        await wait_for(pilot, lambda: log.peer == "dave", "dave's chat open")
        friends = main.query_one(FriendList)
        await wait_for(pilot, lambda: "dave" in friends.friends, "dave listed")

        await pilot.press("f4")
        await wait_for(pilot, lambda: isinstance(app.screen, BlockDialog), "block dialog")
        app.screen.query_one("#block").press()
        await wait_for(pilot, lambda: app.screen is main, "block dialog closed")
        await wait_for(pilot, lambda: "dave" not in friends.friends, "dave gone from the list")
        with api(server.url, "alice", users["alice"]) as alice:
            assert alice.friends().blocked == ("dave",)

        await pilot.press("f6")
        await wait_for(pilot, lambda: isinstance(app.screen, UnblockDialog), "unblock dialog")
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.screen is main, "unblock dialog closed")
        with api(server.url, "alice", users["alice"]) as alice:
            assert alice.friends().blocked == ()


async def test_search_within_the_conversation(
    server: LiveServer, users: dict[str, str], tmp_path: Path
) -> None:
    befriend(server, users, "alice", "bob")
    with api(server.url, "bob", users["bob"]) as bob:
        bob.send("alice", "the needle is here")
        for number in range(150):
            bob.send("alice", f"filler {number}")
    with api(server.url, "alice", users["alice"]) as alice:  # read: the newest page only
        alice.mark_read("bob", alice.history("bob", limit=1).messages[-1].id)
    app = app_for(server.url, tmp_path, user="alice", token=users["alice"])
    app.config.keymap = {"chat.search": "f3"}  # keys are remapped by binding id
    async with app.run_test(size=(80, 24)) as pilot:
        log = await open_chat(pilot, app, "bob")
        await wait_for(pilot, lambda: len(log.message_ids) > 0, "history loaded")
        assert not any("needle" in line for line in log.text_lines()), "older than the first page"
        await pilot.press("f3")
        assert app.focused is app.screen.query_one("#search", Input)
        await type_text(pilot, "NEEDLE")
        await pilot.press("enter")
        await wait_for(pilot, lambda: log.current_match is not None, "the match found")
        assert log.search_term == "NEEDLE"
        status = app.screen.query_one(StatusBar)
        assert status.note.startswith("match 1 ")
        await pilot.press("escape")
        assert log.search_term == "" and app.focused is app.screen.query_one(Composer)


async def test_friends_whose_names_read_alike_are_shown_with_whose_each_is(
    server: LiveServer, users: dict[str, str], tmp_path: Path
) -> None:
    """alice shows as "Alice" and mallory as "\u0410lice" (a Cyrillic A), accounts made before
    the server refused look-alikes (or by another server): wherever dave's TUI names
    either — the friend list, the chat's title, the toast and desktop alert of a new
    message — it says whose it is. Before: the toast said only "\u0410lice: 1 unread
    message", as if alice had written."""
    import sqlite3

    from backend.core.usernames import display_key
    from backend.storage.accounts_schema import ACCOUNTS_FILE

    mallory = register(server.url, "mallory")
    with sqlite3.connect(server.data_dir / ACCOUNTS_FILE) as conn:
        for name, shown in [("alice", "Alice"), ("mallory", "\u0410lice")]:
            conn.execute(
                "UPDATE users SET display_name = ?, display_key = ? WHERE username = ?",
                (shown, display_key(shown), name),
            )
    users = {**users, "mallory": mallory}
    befriend(server, users, "dave", "alice", "mallory", "bob")
    app = app_for(server.url, tmp_path, user="dave", token=users["dave"])
    alerts: list[str] = []
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen), "the main screen")
        friends = app.screen.query_one(FriendList)
        await wait_for(pilot, lambda: {"alice", "mallory"} <= set(friends.friends), "listed")
        first_line = {
            name: str(friends.get_option(name).prompt).split("\n")[0]
            for name in ("alice", "mallory", "bob")
        }
        assert first_line["alice"].strip() == "Alice (@alice)"
        assert first_line["mallory"].strip() == "\u0410lice (@mallory)"
        assert first_line["bob"].strip() == "bob", "a name like no other stays as it is"

        screen = app.screen
        screen._alert = lambda title, body, ring: alerts.append(title)  # type: ignore[method-assign]
        with api(server.url, "mallory", users["mallory"]) as sender:
            sender.send("dave", "it's me, Alice")
        await wait_for(pilot, lambda: app._notifications, "the toast")
        toast = next(iter(app._notifications)).message
        assert toast.startswith("\u0410lice (@mallory): 1 unread message"), toast
        assert alerts == ["\u0410lice (@mallory)"]

        friends.highlight("mallory")
        await pilot.press("enter")
        title = app.screen.query_one("#chat-title")
        await wait_for(pilot, lambda: "@mallory" in str(title.render()), "mallory's chat")
        assert str(title.render()).strip() == "\u0410lice (@mallory)"
