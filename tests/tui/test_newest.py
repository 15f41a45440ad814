"""Back to the newest message, and what the chat says about it, at 80x24 against a real server.

- the "↓ … below" bar names a key that works where the focus is (the message box too);
- jumping to the newest from a window far back in history is one request for the
  newest page, and what was loaded around the old message is dropped;
- a search (which loads a window of old messages) is never called "new messages";
- the search's status line fits 80 columns, and 60;
- a message the server refuses says why, never "None".
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from textual.binding import Binding

from tests.support import LiveServer
from tui.app import PairchatApp, make_app
from tui.client.http import PairchatClient
from tui.config import Config
from tui.core.sync import PAGE
from tui.screens.help import HelpScreen
from tui.widgets.chat_log import ChatLog
from tui.widgets.chat_pane import ChatPane
from tui.widgets.composer import Composer
from tui.widgets.status_bar import StatusBar

from .conftest import (
    api,
    app_for,
    befriend,
    fill,
    open_chat,
    read_all,
    screen_text,
    type_text,
    wait_for,
)

pytestmark = pytest.mark.anyio


class CountingTransport(httpx.AsyncHTTPTransport):
    """httpx's real transport, counting the history requests that go through it."""

    def __init__(self) -> None:
        super().__init__()
        self.history = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/get_message_history"):
            self.history += 1
        return await super().handle_async_request(request)


def counted_app_for(
    url: str, config_dir: Path, transport: CountingTransport, *, user: str, token: str
) -> PairchatApp:
    config = Config(server=url, user=user, config_dir=config_dir)
    config.save_session(user, token)
    return make_app(config, PairchatClient(url, transport=transport))


def on_screen(log: ChatLog, text: str) -> bool:
    return any(text in line for line in log.screen_lines())


def hint(app: PairchatApp) -> str:
    """The "↓ … below" bar under the messages, or "" when it is hidden."""
    marker = app.screen.query_one("#new-marker")
    return str(marker.render()) if marker.display else ""


def keys_named(text: str) -> list[str]:
    """The keys a hint names in parentheses, as Pilot spells them: "(Tab, End)" → tab, end."""
    found = re.search(r"\(([^)]+)\)", text)
    assert found, f"no key named in {text!r}"
    return [key.strip().lower() for key in found.group(1).split(",")]


async def test_the_hint_names_a_key_that_works_where_the_focus_is(
    server: LiveServer, users: dict[str, str], tmp_path: Path
) -> None:
    befriend(server, users, "alice", "bob")
    fill(server, users, 80)
    read_all(server, users, "alice", "bob")
    app = app_for(server.url, tmp_path, user="alice", token=users["alice"])
    async with app.run_test(size=(80, 24)) as pilot:
        log = await open_chat(pilot, app, "bob")
        await wait_for(pilot, lambda: on_screen(log, "message 79"), "the newest message")
        composer = app.screen.query_one(Composer)
        await type_text(pilot, "half a thought")
        places = {"the message box": composer, "the messages": log, "the friend list": None}
        for number, (place, widget) in enumerate(places.items()):
            if widget is None:
                await pilot.press("escape")
            else:
                widget.focus()
            await pilot.pause()
            log.scroll_to(y=0, animate=False, immediate=True)
            await wait_for(pilot, lambda: not log.follow, "scrolled up")
            with api(server.url, "bob", users["bob"]) as bob:
                bob.send("alice", f"new {number}")
            await wait_for(pilot, lambda: "1 new message below" in hint(app), f"hint, {place}")
            assert widget is None or app.focused is widget, place
            await pilot.press(*keys_named(hint(app)))
            newest = f"new {number}"
            await wait_for(pilot, lambda: on_screen(log, newest), f"newest, {place}")  # noqa: B023
            assert log.follow and hint(app) == "", place
        assert composer.text == "half a thought", "the key did not edit the message"

        await pilot.press("f1")  # one binding, with an id, listed in Help
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), "help")
        assert isinstance(app.screen, HelpScreen)
        assert "End, Ctrl+End" in app.screen.text()
    assert [b.id for b in ChatPane.BINDINGS if isinstance(b, Binding) and b.action == "newest"] == [
        "chat.newest"
    ]


async def test_jumping_to_the_newest_from_far_back_is_one_request_for_one_page(
    server: LiveServer, users: dict[str, str], tmp_path: Path
) -> None:
    befriend(server, users, "alice", "bob")
    with api(server.url, "bob", users["bob"]) as bob:
        original = bob.send("alice", "the original, long ago")
    fill(server, users, 20_000, text="filler {n}")
    with api(server.url, "bob", users["bob"]) as bob:
        bob.send("alice", "replying to the start", reply_to=original.id)
    read_all(server, users, "alice", "bob")
    transport = CountingTransport()
    app = counted_app_for(server.url, tmp_path, transport, user="alice", token=users["alice"])
    async with app.run_test(size=(80, 24)) as pilot:
        log = await open_chat(pilot, app, "bob")
        await wait_for(pilot, lambda: on_screen(log, "replying to the start"), "the reply")
        log.focus()
        await pilot.press("up", "enter")  # select the reply, show its original
        await wait_for(pilot, lambda: log.selected == original.id, "the original selected")
        chat = log.conversation
        assert chat is not None and chat.has_more_newer, "a window far back"
        before = transport.history

        await pilot.press("end")
        await wait_for(
            pilot, lambda: on_screen(log, "replying to the start") and log.follow, "the newest"
        )
        await wait_for(pilot, lambda: not chat.has_more_newer, "the window met the newest")
        for _ in range(3):
            await pilot.pause()
        assert transport.history - before == 1, "one request for the newest page, no crawl"
        assert len(log.message_ids) == PAGE, "the window around the original was dropped"
        assert chat.has_more_older and not chat.has_more_newer
        assert log.message_ids == sorted(log.message_ids)
        assert not on_screen(log, "the original, long ago")
        assert log.scroll_offset.y == log.max_scroll_y


async def test_a_search_is_never_called_new_messages(
    server: LiveServer, users: dict[str, str], tmp_path: Path
) -> None:
    befriend(server, users, "alice", "bob")
    fill(server, users, 5_000, text="filler {n}")
    with api(server.url, "bob", users["bob"]) as bob:
        needle = bob.send("alice", "a needle in the middle")
    fill(server, users, 5_000, text="more filler {n}")
    read_all(server, users, "alice", "bob")
    app = app_for(server.url, tmp_path, user="alice", token=users["alice"])
    async with app.run_test(size=(80, 24)) as pilot:
        log = await open_chat(pilot, app, "bob")
        await wait_for(pilot, lambda: on_screen(log, "more filler 4999"), "the newest")
        await pilot.press("ctrl+f")
        await type_text(pilot, "needle")
        await pilot.press("enter")
        await wait_for(pilot, lambda: log.current_match == needle.id, "the match")
        await wait_for(pilot, lambda: on_screen(log, "a needle in the middle"), "shown")
        for _ in range(3):
            await pilot.pause()
        assert " new " not in hint(app), "nothing arrived: old messages are not new"
        assert log.new_below == 0
        assert "newest (End)" in hint(app), "the way back is named (the messages have focus)"

        for _ in range(20):  # PageDown to the window's end: it grows by a newer page
            if len(log.message_ids) > PAGE:
                break
            await pilot.press("pagedown")
        await wait_for(pilot, lambda: len(log.message_ids) > PAGE, "a newer page")
        for _ in range(3):
            await pilot.pause()
        assert len(log.message_ids) == 2 * PAGE, "one page per PageDown, not a crawl"
        assert " new " not in hint(app) and log.new_below == 0
        assert "newest (End)" in hint(app)

        with api(server.url, "bob", users["bob"]) as bob:
            bob.send("alice", "really new")
        await pilot.press(*keys_named(hint(app)))
        await wait_for(pilot, lambda: on_screen(log, "really new"), "the newest")
        await wait_for(pilot, lambda: hint(app) == "", "no hint at the newest")


async def test_the_search_status_fits_80_and_60_columns(
    server: LiveServer, users: dict[str, str], tmp_path: Path
) -> None:
    befriend(server, users, "alice", "bob")
    fill(server, users, 300, text="filler {n}")
    app = app_for(server.url, tmp_path, user="alice", token=users["alice"])
    async with app.run_test(size=(80, 24)) as pilot:
        log = await open_chat(pilot, app, "bob")
        await wait_for(pilot, lambda: log.conversation and log.conversation.loaded, "loaded")
        await pilot.press("ctrl+f")
        await type_text(pilot, "filler 29")
        await pilot.press("enter")
        status = app.screen.query_one(StatusBar)
        await wait_for(pilot, lambda: "match 1" in status.note, "a match")
        await pilot.pause()
        top = screen_text(app)[0]
        assert top.rstrip().endswith(status.note), f"cut: {top!r}"
        assert "Esc" in top
        await pilot.resize_terminal(60, 20)
        await wait_for(pilot, lambda: app.screen.size.width == 60, "60 columns")
        await pilot.pause()
        top = screen_text(app)[0]
        assert top.rstrip().endswith(status.note), f"cut at 60: {top!r}"


async def test_a_refused_message_says_why_never_none(
    server: LiveServer, users: dict[str, str], tmp_path: Path
) -> None:
    befriend(server, users, "alice", "carol")
    with api(server.url, "carol", users["carol"]) as carol:
        carol.block_friend("alice")
    app = app_for(server.url, tmp_path, user="alice", token=users["alice"])
    async with app.run_test(size=(80, 24)) as pilot:
        await open_chat(pilot, app, "carol")
        await type_text(pilot, "hello?")
        await pilot.press("enter")

        def toast() -> str:
            texts = [str(n.message) for n in app._notifications]
            return next((t for t in texts if t.startswith("Not sent to carol")), "")

        await wait_for(pilot, toast, "the refusal toast")
        core = app.screen.query_one(ChatPane).core
        reason = core.outbox.items[0].error
        assert reason, "the outbox keeps the reason"
        assert "None" not in toast()
        assert f"Not sent to carol: {reason}." in toast()
