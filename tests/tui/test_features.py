"""Conversation features in the TUI, against the real server: edit, delete, replies,
read receipts, typing, whole-history search, message requests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import LiveServer, http
from tui.screens.dialogs import ConfirmDialog, RequestsDialog
from tui.widgets.chat_log import ChatLog
from tui.widgets.composer import Composer
from tui.widgets.friend_list import REQUESTS, FriendList

from .conftest import api, app_for, befriend, fill, open_chat, type_text, wait_for

pytestmark = pytest.mark.anyio


def history(server: LiveServer, users: dict[str, str], me: str, other: str) -> list[dict]:  # type: ignore[type-arg]
    reply = http.post(
        f"{server.url}/get_message_history",
        data={"user_one": me, "user_two": other},
        headers={"Authorization": f"Bearer {users[me]}"},
    )
    return list(reply.json()["history"])


def shown(log: ChatLog, text: str) -> bool:
    return any(text in line for line in log.text_lines())


async def test_edit_with_up_and_delete_with_d_and_see_the_peers_edits_live(
    server: LiveServer, users: dict[str, str], tmp_path: Path
) -> None:
    befriend(server, users, "alice", "bob")
    with api(server.url, "bob", users["bob"]) as bob:
        theirs = bob.send("alice", "bob's first version")
    app = app_for(server.url, tmp_path, user="alice", token=users["alice"])
    async with app.run_test(size=(80, 24)) as pilot:
        log = await open_chat(pilot, app, "bob")
        composer = app.screen.query_one(Composer)
        await type_text(pilot, "helo")
        await pilot.press("enter")
        await wait_for(pilot, lambda: not log.pending and shown(log, "helo"), "sent")
        await pilot.press("up")  # an empty box: edit my last message
        assert composer.editing is not None and composer.text == "helo"
        await pilot.press("end", "backspace", "backspace")
        await type_text(pilot, "llo")
        await pilot.press("enter")
        await wait_for(pilot, lambda: shown(log, "(edited)") and shown(log, "hello"), "edited")
        mine = next(m for m in history(server, users, "alice", "bob") if m["author"] == "alice")
        assert (mine["message"], bool(mine["edited_at"])) == ("hello", True)

        with api(server.url, "bob", users["bob"]) as bob:  # the peer edits an old message
            bob.edit_message("alice", theirs.id, "bob's second version")
        await wait_for(pilot, lambda: shown(log, "bob's second version"), "their edit, live")

        log.focus()
        await pilot.press("up")  # select my (newest) message
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), "asked first")
        app.screen.query_one("#yes").press()
        await wait_for(pilot, lambda: shown(log, "message deleted"), "deleted")
        mine = next(m for m in history(server, users, "alice", "bob") if m["author"] == "alice")
        assert (mine["deleted"], mine["message"]) == (True, "")


async def test_reply_shows_a_quote_and_enter_jumps_to_an_original_far_back(
    server: LiveServer, users: dict[str, str], tmp_path: Path
) -> None:
    befriend(server, users, "alice", "bob")
    with api(server.url, "bob", users["bob"]) as bob:
        original = bob.send("alice", "the original, long ago")
    fill(server, users, 400, text="filler {n}")
    app = app_for(server.url, tmp_path, user="alice", token=users["alice"])
    async with app.run_test(size=(80, 24)) as pilot:
        log = await open_chat(pilot, app, "bob")
        await wait_for(pilot, lambda: log.conversation and log.conversation.loaded, "loaded")
        log.focus()
        await pilot.press("up")
        selected = log.selected
        assert selected is not None
        await pilot.press("r")
        composer = app.screen.query_one(Composer)
        assert composer.replying == selected and app.focused is composer
        await type_text(pilot, "my answer")
        await pilot.press("enter")
        await wait_for(pilot, lambda: shown(log, "my answer") and not log.pending, "sent")
        reply = history(server, users, "alice", "bob")[-1]
        assert reply["reply_to"] == selected and reply["message"] == "my answer"
        assert any(line.strip().startswith("\u21b3 ") for line in log.text_lines())

        with api(server.url, "bob", users["bob"]) as bob:  # a reply to a message not loaded
            bob.send("alice", "replying to the start", reply_to=original.id)
        await wait_for(pilot, lambda: shown(log, "replying to the start"), "their reply")
        assert shown(log, "\u21b3 bob: the original, long ago") is False
        log.focus()
        await pilot.press("end", "up")
        await pilot.press("enter")  # show the original: a window around it
        await wait_for(pilot, lambda: log.selected == original.id, "the original selected")
        assert any("the original, long ago" in line for line in log.screen_lines())


async def test_seen_receipts_and_typing_in_the_header(
    server: LiveServer, users: dict[str, str], tmp_path: Path
) -> None:
    befriend(server, users, "alice", "bob")
    befriend(server, users, "bob", "alice")
    app = app_for(server.url, tmp_path, user="alice", token=users["alice"])
    async with app.run_test(size=(80, 24)) as pilot:
        log = await open_chat(pilot, app, "bob")
        await type_text(pilot, "did you read this?")
        await pilot.press("enter")
        await wait_for(pilot, lambda: not log.pending and log.message_ids, "sent")
        with api(server.url, "bob", users["bob"]) as bob:
            bob.mark_read("alice", log.message_ids[-1])
        await wait_for(pilot, lambda: shown(log, "\u00b7 seen"), "seen")

        title = app.screen.query_one("#chat-title")
        with api(server.url, "bob", users["bob"]) as bob:
            bob.typing("alice")
        await wait_for(pilot, lambda: "typing" in str(title.render()), "bob is typing")
        await wait_for(pilot, lambda: "typing" not in str(title.render()), "it ends", timeout=15)

        with api(server.url, "bob", users["bob"]) as bob:
            bob.settings(read_receipts=False)
            bob.send("alice", "receipts off now")  # wakes alice's feed
        await wait_for(pilot, lambda: not shown(log, "\u00b7 seen"), "no receipts")


async def test_whole_history_search_finds_a_match_20000_back(
    server: LiveServer, users: dict[str, str], tmp_path: Path
) -> None:
    befriend(server, users, "alice", "bob")
    fill(server, users, 100, text="old filler {n}")
    with api(server.url, "bob", users["bob"]) as bob:
        far = bob.send("alice", "a needle in the far past")
    fill(server, users, 10_000, text="filler {n}")
    with api(server.url, "bob", users["bob"]) as bob:
        middle = bob.send("alice", "a needle in the middle")
    fill(server, users, 10_000, text="more filler {n}")
    with api(server.url, "bob", users["bob"]) as bob:
        bob.send("alice", "the newest")
    app = app_for(server.url, tmp_path, user="alice", token=users["alice"])
    async with app.run_test(size=(80, 24)) as pilot:
        log = await open_chat(pilot, app, "bob")
        await wait_for(pilot, lambda: log.conversation and log.conversation.loaded, "loaded")
        await pilot.press("ctrl+f")
        await type_text(pilot, "needle")
        await pilot.press("enter")
        await wait_for(pilot, lambda: log.current_match == middle.id, "10,000 back", timeout=30)
        assert any("a needle in the middle" in line for line in log.screen_lines())
        assert len(log.message_ids) < 1000, "a window around the match, not everything"
        await pilot.press("n")  # the next older match
        await wait_for(pilot, lambda: log.current_match == far.id, "20,000 back", timeout=30)
        assert any("a needle in the far past" in line for line in log.screen_lines())
        await pilot.press("N")
        await wait_for(pilot, lambda: log.current_match == middle.id, "back to the newer one")
        await pilot.press("escape")
        assert log.search_term == ""


async def test_a_stranger_is_a_request_not_a_bell(
    server: LiveServer, users: dict[str, str], tmp_path: Path
) -> None:
    befriend(server, users, "alice", "bob")
    app = app_for(server.url, tmp_path, user="alice", token=users["alice"])
    bells: list[int] = []
    app.bell = lambda: bells.append(1)  # type: ignore[method-assign]
    async with app.run_test(size=(80, 24)) as pilot:
        await open_chat(pilot, app, "bob")
        with api(server.url, "dave", users["dave"]) as dave:
            dave.send("alice", "hi, we have not met")
        friends = app.screen.query_one(FriendList)
        await wait_for(pilot, lambda: friends.requests == 1, "a request row")
        assert "dave" not in friends.friends and not bells
        assert not any("unread" in n.message for n in app._notifications)
        await pilot.press("escape")
        friends.highlighted = friends.get_option_index(REQUESTS)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, RequestsDialog), "the requests")
        await pilot.press("a")  # accept
        await wait_for(pilot, lambda: "dave" in friends.friends, "dave is a friend now")
