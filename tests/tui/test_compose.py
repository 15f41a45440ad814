"""Composing: nothing typed is lost, merged, doubled or sent to the wrong person.

Pilot tests at 80x24 against a real server on 127.0.0.1. ``burst`` queues keys
the way a fast typist, tmux ``send-keys`` or an unbracketed paste delivers them
(all before the app handles one); ``paste`` is a bracketed paste.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support import LiveServer
from tui.core.sync import MAX_MESSAGE
from tui.widgets.chat_log import ChatLog
from tui.widgets.chat_pane import ChatPane
from tui.widgets.composer import Composer
from tui.widgets.friend_list import FriendList

from .conftest import (
    api,
    app_for,
    befriend,
    burst,
    open_chat,
    paste,
    stored,
    type_text,
    wait_for,
)

pytestmark = pytest.mark.anyio


async def test_a_burst_of_keys_with_enter_stores_each_message_once_in_order(
    server: LiveServer, users: dict[str, str], tmp_path: Path
) -> None:
    befriend(server, users, "alice", "bob")
    app = app_for(server.url, tmp_path, user="alice", token=users["alice"])
    async with app.run_test(size=(80, 24)) as pilot:
        log = await open_chat(pilot, app, "bob")
        await wait_for(pilot, lambda: log.conversation and log.conversation.loaded, "loaded")
        await burst(pilot, "one\rtwo\rthree\r")
        await wait_for(
            pilot, lambda: len(stored(server, users, "alice", "bob")) >= 3, "three stored"
        )
        await wait_for(pilot, lambda: not log.pending, "the outbox drained")
        await pilot.pause(0.3)
        assert stored(server, users, "alice", "bob") == ["one", "two", "three"]
        assert app.screen.query_one(Composer).text == ""


async def test_a_draft_stays_in_its_chat_and_survives_a_restart(
    server: LiveServer, users: dict[str, str], tmp_path: Path
) -> None:
    befriend(server, users, "alice", "bob", "carol")
    with api(server.url, "carol", users["carol"]) as carol:
        carol.send("alice", "hi alice")  # carol has an unread message: Ctrl+N goes there
    app = app_for(server.url, tmp_path, user="alice", token=users["alice"])
    async with app.run_test(size=(80, 24)) as pilot:
        await open_chat(pilot, app, "bob")
        composer = app.screen.query_one(Composer)
        await type_text(pilot, "for bob only")
        await pilot.press("ctrl+n")  # the unread chat: carol's
        log = app.screen.query_one(ChatLog)
        await wait_for(pilot, lambda: log.peer == "carol", "carol's chat")
        assert composer.text == "", "bob's draft did not follow into carol's chat"
        await pilot.press("enter")
        await pilot.press("escape")  # back to the list, then Enter on bob
        friends = app.screen.query_one(FriendList)
        friends.highlight("bob")
        await pilot.press("enter")
        await wait_for(pilot, lambda: log.peer == "bob", "bob's chat again")
        assert composer.text == "for bob only"
        await pilot.press("escape")
        friends.highlight("carol")
        await pilot.press("enter")
        await wait_for(pilot, lambda: log.peer == "carol", "carol's chat again")
        assert composer.text == ""
        await pilot.pause(0.3)
    assert "for bob only" not in stored(server, users, "alice", "carol")
    assert stored(server, users, "alice", "bob") == []
    drafts = json.loads((tmp_path / "drafts-alice.json").read_text())["drafts"]
    assert drafts == {"bob": "for bob only"}

    again = app_for(server.url, tmp_path)
    async with again.run_test(size=(80, 24)) as pilot:
        await open_chat(pilot, again, "bob")
        assert again.screen.query_one(Composer).text == "for bob only"


async def test_a_bracketed_paste_inserts_every_line_and_never_sends(
    server: LiveServer, users: dict[str, str], tmp_path: Path
) -> None:
    befriend(server, users, "alice", "bob")
    app = app_for(server.url, tmp_path, user="alice", token=users["alice"])
    async with app.run_test(size=(80, 24)) as pilot:
        await open_chat(pilot, app, "bob")
        composer = app.screen.query_one(Composer)
        await paste(pilot, "line one\nline two\nline three")
        assert composer.text == "line one\nline two\nline three"
        await pilot.pause(0.3)
        assert stored(server, users, "alice", "bob") == []
        await pilot.press("enter")
        await wait_for(pilot, lambda: stored(server, users, "alice", "bob"), "sent")
    assert stored(server, users, "alice", "bob") == ["line one\nline two\nline three"]


async def test_text_over_the_limit_is_kept_and_the_user_told_by_how_much(
    server: LiveServer, users: dict[str, str], tmp_path: Path
) -> None:
    befriend(server, users, "alice", "bob")
    long_text = "x" * (MAX_MESSAGE + 123)
    app = app_for(server.url, tmp_path, user="alice", token=users["alice"])
    async with app.run_test(size=(80, 24)) as pilot:
        await open_chat(pilot, app, "bob")
        composer = app.screen.query_one(Composer)
        await paste(pilot, long_text)
        assert composer.text == long_text
        notice = app.screen.query_one("#composer-notice")
        assert "123 characters too long" in str(notice.render())
        await pilot.press("enter")
        assert composer.text == long_text, "Enter keeps what cannot be sent"
        assert "Too long by 123 characters" in str(notice.render())
        await pilot.press("backspace")
        assert "122 characters too long" in str(notice.render())
        await pilot.pause(0.3)
    assert stored(server, users, "alice", "bob") == []


async def test_multi_line_compose_with_alt_enter_and_ctrl_j(
    server: LiveServer, users: dict[str, str], tmp_path: Path
) -> None:
    befriend(server, users, "alice", "bob")
    app = app_for(server.url, tmp_path, user="alice", token=users["alice"])
    async with app.run_test(size=(80, 24)) as pilot:
        await open_chat(pilot, app, "bob")
        composer = app.screen.query_one(Composer)
        before = composer.size.height
        await type_text(pilot, "a")
        await pilot.press("alt+enter")
        await type_text(pilot, "b")
        await pilot.press("ctrl+j")
        await type_text(pilot, "c")
        await pilot.press("shift+enter")
        await type_text(pilot, "d")
        assert composer.text == "a\nb\nc\nd"
        await pilot.pause()
        assert composer.size.height > before, "the composer grows with its lines"
        await burst(pilot, "\ne\r")  # a newline (Ctrl+J) and Enter in one burst
        await wait_for(pilot, lambda: stored(server, users, "alice", "bob"), "sent")
    assert stored(server, users, "alice", "bob") == ["a\nb\nc\nd\ne"]


async def test_alt_up_in_an_empty_composer_recalls_earlier_messages(
    server: LiveServer, users: dict[str, str], tmp_path: Path
) -> None:
    befriend(server, users, "alice", "bob")
    with api(server.url, "alice", users["alice"]) as alice:
        alice.send("bob", "first")
        alice.send("bob", "second")
    with api(server.url, "bob", users["bob"]) as bob:
        bob.send("alice", "not mine")
    app = app_for(server.url, tmp_path, user="alice", token=users["alice"])
    async with app.run_test(size=(80, 24)) as pilot:
        log = await open_chat(pilot, app, "bob")
        await wait_for(pilot, lambda: len(log.message_ids) == 3, "history")
        composer = app.screen.query_one(Composer)
        await pilot.press("alt+up")
        assert composer.text == "second"
        await pilot.press("alt+up")
        assert composer.text == "first"
        await pilot.press("alt+up")
        assert composer.text == "first", "the oldest stays"
        await pilot.press("alt+down")
        assert composer.text == "second"
        await pilot.press("alt+down")
        assert composer.text == ""
        await type_text(pilot, "typed")
        await pilot.press("alt+up")
        assert composer.text == "typed", "with text, nothing is recalled over it"


async def test_the_pane_is_one_chat_at_a_time_enter_goes_where_the_text_was_typed(
    server: LiveServer, users: dict[str, str], tmp_path: Path
) -> None:
    """Text typed in bob's chat and sent in the same burst as a switch stays bob's."""
    befriend(server, users, "alice", "bob", "carol")
    app = app_for(server.url, tmp_path, user="alice", token=users["alice"])
    async with app.run_test(size=(80, 24)) as pilot:
        await open_chat(pilot, app, "bob")
        pane = app.screen.query_one(ChatPane)
        await burst(pilot, "to bob\r")
        pane.core.open_chat("carol")
        await burst(pilot, "to carol\r")
        await wait_for(
            pilot,
            lambda: (
                stored(server, users, "alice", "carol") and stored(server, users, "alice", "bob")
            ),
            "both stored",
        )
    assert stored(server, users, "alice", "bob") == ["to bob"]
    assert stored(server, users, "alice", "carol") == ["to carol"]


@pytest.mark.parametrize("typed", ["burst", "one key at a time"])
async def test_typing_in_the_friend_list_starts_a_message_to_the_highlighted_friend(
    server: LiveServer, users: dict[str, str], tmp_path: Path, typed: str
) -> None:
    """Before: keys typed with the friend list focused were commands or nothing: "hello
    from me" muted the highlighted friend (its `m`) and left no text anywhere."""
    befriend(server, users, "alice", "bob", "carol")
    app = app_for(server.url, tmp_path, user="alice", token=users["alice"])
    async with app.run_test(size=(80, 24)) as pilot:
        friends = app.screen.query_one(FriendList)
        await wait_for(pilot, lambda: {"bob", "carol"} <= set(friends.friends), "the list")
        friends.highlight("carol")
        assert app.focused is friends
        if typed == "burst":
            await burst(pilot, "hello from me\r")
        else:
            await pilot.press(*"hello from me", "enter")
        await wait_for(
            pilot, lambda: stored(server, users, "alice", "carol") == ["hello from me"], "sent"
        )
        log = app.screen.query_one(ChatLog)
        assert log.peer == "carol" and app.focused is app.screen.query_one(Composer)
        assert app.screen.query_one(Composer).text == ""
        assert not app.screen.core.is_muted("carol")  # type: ignore[attr-defined]
        await pilot.press("escape")
        friends.highlight("bob")
        await pilot.press("?")  # a key of the list's own stays a command: the help
        await pilot.pause(0.2)
        assert type(app.screen).__name__ == "HelpScreen"
    assert stored(server, users, "alice", "bob") == []


async def test_a_huge_paste_is_cut_at_the_bound_and_the_user_is_told(
    server: LiveServer, users: dict[str, str], tmp_path: Path
) -> None:
    """A 10 MB paste was kept whole, saved as an 11.8 MB draft and restored into every
    next session. Now the box holds MAX_DRAFT characters, says how much was left out,
    and what is saved and restored is within the bound too."""
    from tui.core.drafts import MAX_DRAFT

    befriend(server, users, "alice", "bob")
    app = app_for(server.url, tmp_path, user="alice", token=users["alice"])
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await open_chat(pilot, app, "bob")
        composer = app.screen.query_one(Composer)
        await type_text(pilot, "mine ")
        await paste(pilot, "x" * 10_000_000)
        await wait_for(pilot, lambda: len(composer.text) == MAX_DRAFT, "the paste, cut")
        assert composer.text.startswith("mine x")
        await wait_for(pilot, lambda: app._notifications, "a notice")
        notice = next(iter(app._notifications)).message
        assert f"{10_000_000 - (MAX_DRAFT - 5):,}" in notice, notice
        await pilot.press("y")  # nothing more fits
        assert len(composer.text) == MAX_DRAFT
        await pilot.press("ctrl+q")
    saved = json.loads((tmp_path / "drafts-alice.json").read_text())["drafts"]
    assert len(saved["bob"]) == MAX_DRAFT
