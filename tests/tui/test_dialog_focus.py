"""Keys after a dialog's action go where the user sees them go.

QA found the "Message requests" and F7 "Messages not sent" dialogs open and focused
after their last useful action: with requests from erin and frank, ``a`` accepted
erin and ``xyz hi`` typed for her chat declined frank (``x``) and lost the rest; with
one request everything typed after ``a`` went to "No requests."; after F7's Enter the
dialog sat on "Nothing left here." and took a later Ctrl+F. Accepting opens that
person's chat (accepting is choosing to talk to them). Declining or blocking the last
request, and retrying or discarding the last unsent message, leave the dialog open,
saying it is empty, until Escape: closing it there sent a half-written draft when F7's
Enter was pressed twice (the second one reached the message box).

Also here: F2 takes a name written as the UI writes it (``@bob``), and a bad name is
refused in the UI's words (F2 and the door's claim screen).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Static

from tests.support import LiveServer, ServerProcess, register
from tui.app import PairchatApp
from tui.screens.claim import ClaimScreen
from tui.screens.dialogs import AddFriendDialog, RequestsDialog, UnsentDialog
from tui.screens.main import MainScreen
from tui.widgets.composer import Composer
from tui.widgets.friend_list import REQUESTS, FriendList
from tui.widgets.status_bar import StatusBar

from .conftest import api, app_for, burst, open_chat, refused_by, type_text, wait_for
from .test_tmux import Tmux, chat_server, start_in_bobs_chat

__all__ = ["chat_server"]  # a fixture of test_tmux, used here
pytestmark = pytest.mark.anyio


def strangers_write(url: str, users: dict[str, str], *names: str) -> None:
    for name in names:
        users[name] = register(url, name)
        with api(url, name, users[name]) as stranger:
            stranger.send("alice", f"hi alice, {name} here")


async def open_requests(pilot: Pilot[None], app: PairchatApp, count: int) -> FriendList:
    await wait_for(pilot, lambda: isinstance(app.screen, MainScreen), "the main screen")
    friends = app.screen.query_one(FriendList)
    await wait_for(pilot, lambda: friends.requests == count, f"{count} requests")
    friends.focus()
    friends.highlighted = friends.get_option_index(REQUESTS)
    await pilot.press("enter")
    await wait_for(pilot, lambda: isinstance(app.screen, RequestsDialog), "the requests")
    return friends


async def test_accept_opens_their_chat_and_the_next_keys_go_into_it(
    server: LiveServer, users: dict[str, str], tmp_path: Path
) -> None:
    strangers_write(server.url, users, "erin", "frank")
    app = app_for(server.url, tmp_path, user="alice", token=users["alice"])
    async with app.run_test(size=(80, 24)) as pilot:
        friends = await open_requests(pilot, app, 2)
        await burst(pilot, "axyz hi")  # a accepts erin; the rest is meant for her chat
        composer = app.screen.query_one(Composer)
        await wait_for(pilot, lambda: composer.text == "xyz hi", "the keys in erin's box")
        assert isinstance(app.screen, MainScreen) and composer.has_focus
        assert composer.peer == "erin"
        await wait_for(pilot, lambda: "erin" in friends.friends, "erin is a friend")
        main = app.screen
        assert isinstance(main, MainScreen)
        assert list(main.core.requests) == ["frank"], "x did not decline frank"
        await pilot.press("enter")
        with api(server.url, "erin", users["erin"]) as erin:
            await wait_for(
                pilot,
                lambda: [m.text for m in erin.history("alice").messages][-1:] == ["xyz hi"],
                "sent to erin, once",
            )


async def test_declining_the_last_request_leaves_the_dialog_saying_so(
    server: LiveServer, users: dict[str, str], tmp_path: Path
) -> None:
    strangers_write(server.url, users, "erin")
    app = app_for(server.url, tmp_path, user="alice", token=users["alice"])
    async with app.run_test(size=(80, 24)) as pilot:
        friends = await open_requests(pilot, app, 1)
        await pilot.press("x")
        assert isinstance(app.screen, RequestsDialog), "still open, and seen to be"
        assert "No requests" in str(app.screen.query_one(".dialog-error", Static).render())
        await wait_for(pilot, lambda: friends.requests == 0, "the request declined")
        await pilot.press("escape")
        assert isinstance(app.screen, MainScreen) and friends.has_focus


async def test_a_second_enter_in_f7_never_sends_the_draft_under_it(
    server: LiveServer, users: dict[str, str], tmp_path: Path
) -> None:
    refused_by(server, users, "alice", "bob")
    app = app_for(server.url, tmp_path, user="alice", token=users["alice"])
    async with app.run_test(size=(80, 24)) as pilot:
        await open_chat(pilot, app, "bob")
        await type_text(pilot, "first try")
        await pilot.press("enter")
        status = app.screen.query_one(StatusBar)
        await wait_for(pilot, lambda: status.failed == 1, "refused")
        with api(server.url, "bob", users["bob"]) as bob:
            bob.unblock_friend("alice")
        composer = app.screen.query_one(Composer)
        await type_text(pilot, "half-written draft")
        await pilot.press("f7")
        await wait_for(pilot, lambda: isinstance(app.screen, UnsentDialog), "the unsent list")
        await burst(pilot, "\r\r")  # Enter sends it again; the second has nothing to do
        assert isinstance(app.screen, UnsentDialog), "the dialog says it is empty"
        with api(server.url, "bob", users["bob"]) as bob:
            await wait_for(
                pilot,
                lambda: [m.text for m in bob.history("alice").messages] == ["first try"],
                "the retried message delivered",
            )
            await pilot.press("escape")
            assert composer.text == "half-written draft", "the draft is still in the box"
            assert [m.text for m in bob.history("alice").messages] == ["first try"]


@pytest.fixture
def tmux(tmp_path: Path) -> Iterator[Tmux]:
    session = Tmux(f"pairchat-dialog-{os.getpid()}-{tmp_path.name}")
    yield session
    session.run("kill-server")


def test_accept_then_typing_in_one_burst_in_the_real_terminal(
    chat_server: tuple[ServerProcess, dict[str, str]], tmux: Tmux, tmp_path: Path
) -> None:
    proc, users = chat_server
    strangers_write(proc.url, users, "erin", "frank")
    start_in_bobs_chat(tmux, proc, tmp_path / "cfg")
    tmux.wait_for("Requests (2)")
    tmux.keys("Escape", "Down", "Enter")  # to the list, the Requests row, open it
    tmux.wait_for("Message requests")
    tmux.keys("a", "x", "y", "z")  # one burst: accept erin, then words for her chat
    tmux.wait_for("\u258a xyz")
    screen = tmux.wait_for("Requests (1)")  # frank's, still there: x did not decline it
    assert "\u2595 @erin" in screen, screen
    tmux.keys("Enter")
    deadline = time.monotonic() + 20
    with api(proc.url, "erin", users["erin"]) as erin:
        while len(texts := [m.text for m in erin.history("alice").messages]) < 2:
            assert time.monotonic() < deadline, f"only {texts} were stored"
            time.sleep(0.1)
    assert texts == ["hi alice, erin here", "xyz"]
    tmux.keys("C-q")
    tmux.wait_for("EXITED")


async def test_f2_takes_a_name_written_as_at_name_and_words_a_bad_one_for_people(
    server: LiveServer, users: dict[str, str], tmp_path: Path
) -> None:
    """F2 refused ``@bob`` although the UI writes names so, and a bad name read
    "'username' is not a valid username: …" (the API's field name)."""
    app = app_for(server.url, tmp_path, user="alice", token=users["alice"])
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen), "the main screen")
        friends = app.screen.query_one(FriendList)
        await pilot.press("f2")
        await wait_for(pilot, lambda: isinstance(app.screen, AddFriendDialog), "the F2 dialog")
        await type_text(pilot, "bad_name")
        await pilot.press("enter")
        error = app.screen.query_one(".dialog-error", Static)
        await wait_for(pilot, lambda: "valid" in str(error.render()), "the refusal")
        assert str(error.render()).startswith("Not a valid username: a username is 1-39")
        await pilot.press("ctrl+a", "ctrl+k")
        await type_text(pilot, "@bob")
        await pilot.press("enter")
        await wait_for(pilot, lambda: "bob" in friends.friends, "bob added")
        assert isinstance(app.screen, MainScreen)


async def test_the_claim_screen_words_a_bad_name_for_people(
    server: LiveServer, tmp_path: Path
) -> None:
    app = app_for(server.url, tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await app.push_screen(ClaimScreen("a-ticket"))
        await wait_for(pilot, lambda: isinstance(app.screen, ClaimScreen), "the claim screen")
        await type_text(pilot, "bad_name")
        await pilot.press("enter")
        error = app.screen.query_one("#signin-error", Static)
        await wait_for(pilot, lambda: "…" not in str(error.render()), "the answer")
        assert str(error.render()).startswith("Not a valid username: a username is 1-39")
