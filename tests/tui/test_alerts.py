"""Selecting and copying messages, the links list, mute, the bell policy and desktop
notifications (OSC 9 / OSC 777, wrapped for tmux)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import LiveServer
from tui.alerts import desktop_notification
from tui.screens.dialogs import LinksDialog
from tui.widgets.friend_list import FriendList

from .conftest import api, app_for, befriend, open_chat, wait_for

pytestmark = pytest.mark.anyio


def test_desktop_notifications_cannot_be_cut_short_and_pass_through_tmux() -> None:
    assert desktop_notification("off", "t", "b") == ""
    assert desktop_notification("osc9", "pairchat: bob", "hi") == "\x1b]9;pairchat: bob: hi\x07"
    evil = desktop_notification("osc777", "bob\x07\x1b]52;c;x", "a;b")
    assert evil == "\x1b]777;notify;bob  ]52 c x;a b\x07"
    wrapped = desktop_notification("osc9", "t", "b", in_tmux=True)
    assert wrapped == "\x1bPtmux;\x1b\x1b]9;t: b\x07\x1b\\"


async def test_select_copy_and_list_links(
    server: LiveServer, users: dict[str, str], tmp_path: Path
) -> None:
    befriend(server, users, "alice", "bob")
    with api(server.url, "bob", users["bob"]) as bob:
        bob.send("alice", "first, see https://example.org/one")
        bob.send("alice", "second")
        bob.send("alice", "third www.example.net/three")
    app = app_for(server.url, tmp_path, user="alice", token=users["alice"])
    async with app.run_test(size=(80, 24)) as pilot:
        log = await open_chat(pilot, app, "bob")
        await wait_for(pilot, lambda: len(log.message_ids) == 3, "history")
        log.focus()
        await pilot.press("up")  # the newest on screen
        assert log.selected == log.message_ids[-1]
        assert any(line.startswith("\u25b6 bob") for line in log.screen_lines())
        await pilot.press("up", "up")
        assert log.selected == log.message_ids[0]
        await pilot.press("c")
        assert app.clipboard == "first, see https://example.org/one"
        await pilot.press("l")
        await wait_for(pilot, lambda: isinstance(app.screen, LinksDialog), "the links")
        dialog = app.screen
        assert isinstance(dialog, LinksDialog)
        assert dialog.links == ["https://example.org/one", "https://www.example.net/three"]
        await pilot.press("c")
        assert app.clipboard == "https://example.org/one"
        await wait_for(pilot, lambda: not isinstance(app.screen, LinksDialog), "closed")
        await pilot.press("escape")  # first Esc: no message selected
        assert log.selected is None and app.focused is log
        await pilot.press("escape")  # then back to the list
        assert isinstance(app.focused, FriendList)


async def test_a_muted_chat_rings_no_bell_and_shows_no_toast(
    server: LiveServer, users: dict[str, str], tmp_path: Path
) -> None:
    befriend(server, users, "alice", "bob", "carol")
    app = app_for(server.url, tmp_path, user="alice", token=users["alice"])
    app.config.notify = "osc777"
    bells: list[int] = []
    written: list[str] = []
    app.bell = lambda: bells.append(1)  # type: ignore[method-assign]
    async with app.run_test(size=(80, 24)) as pilot:
        assert app._driver is not None
        app._driver.write = written.append  # type: ignore[method-assign]
        await open_chat(pilot, app, "bob")
        friends = app.screen.query_one(FriendList)
        await pilot.press("escape")
        friends.highlight("carol")
        await pilot.press("f3")
        await wait_for(pilot, lambda: app.screen.core.is_muted("carol"), "carol muted")  # type: ignore[attr-defined]
        with api(server.url, "carol", users["carol"]) as carol:
            carol.send("alice", "shh")
        await wait_for(pilot, lambda: friends.friends["carol"].unread == 1, "counted")
        await pilot.pause(0.3)
        assert not bells and not any("unread" in n.message for n in app._notifications)
        assert not any("777;notify" in text for text in written)
        assert "muted" in str(friends.get_option("carol").prompt)

        await pilot.press("f3")  # unmute: the next message rings and notifies
        with api(server.url, "carol", users["carol"]) as carol:
            carol.send("alice", "now you hear me")
        await wait_for(pilot, lambda: bells, "the bell")
        assert any(t.startswith("\x1b]777;notify;pairchat: carol;2 unread") for t in written)
    assert (tmp_path / "prefs-alice.json").exists()


@pytest.mark.parametrize(("policy", "expected"), [("all", 1), ("off", 0)])
async def test_bell_all_rings_for_an_unseen_message_in_the_open_chat_and_off_never(
    server: LiveServer, users: dict[str, str], tmp_path: Path, policy: str, expected: int
) -> None:
    befriend(server, users, "alice", "bob", "carol")
    app = app_for(server.url, tmp_path, user="alice", token=users["alice"])
    app.config.bell = policy
    bells: list[int] = []
    app.bell = lambda: bells.append(1)  # type: ignore[method-assign]
    async with app.run_test(size=(80, 24)) as pilot:
        log = await open_chat(pilot, app, "bob")
        await wait_for(pilot, lambda: log.conversation and log.conversation.loaded, "open")
        app.app_focus = False  # the terminal lost focus: what arrives is not seen
        with api(server.url, "bob", users["bob"]) as bob:
            bob.send("alice", "while away")
        await wait_for(
            pilot, lambda: any("while away" in line for line in log.text_lines()), "arrived"
        )
        with api(server.url, "carol", users["carol"]) as carol:
            carol.send("alice", "elsewhere")
        friends = app.screen.query_one(FriendList)
        await wait_for(pilot, lambda: friends.friends["carol"].unread == 1, "carol's")
        await pilot.pause(0.2)
        assert len(bells) == 2 * expected
