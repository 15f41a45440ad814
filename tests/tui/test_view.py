"""The chat view the reader can trust: it follows, it says what is new, it marks read only
what was seen, and its cost follows the screen, not the history.

Pilot tests against a real server on 127.0.0.1. Messages are filled straight into
the pair's file as rows of the seed's table (fast, and the contract keeps it readable).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.cells import cell_len

from tests.support import LiveServer
from tui.client.models import Message
from tui.core.conversation import Conversation
from tui.core.sync import SEARCH_PAGE
from tui.widgets.chat_log import ChatLog
from tui.widgets.chat_pane import ChatPane
from tui.widgets.composer import Composer
from tui.widgets.friend_list import FriendList

from .conftest import (
    FIXED_NOW,
    HistoryGate,
    api,
    app_for,
    befriend,
    fill,
    fixed_clock,
    gated_app_for,
    open_chat,
    read_all,
    screen_text,
    type_text,
    unread,
    wait_for,
)

pytestmark = pytest.mark.anyio


def on_screen(log: ChatLog, text: str) -> bool:
    return any(text in line for line in log.screen_lines())


@pytest.mark.parametrize("sizes", [((80, 24), (60, 20)), ((120, 40), (80, 24))])
async def test_the_chat_follows_the_newest_message_across_resizes(
    server: LiveServer,
    users: dict[str, str],
    tmp_path: Path,
    sizes: tuple[tuple[int, int], tuple[int, int]],
) -> None:
    befriend(server, users, "alice", "bob")
    fill(server, users, 80)
    read_all(server, users, "alice", "bob")
    first, second = sizes
    app = app_for(server.url, tmp_path, user="alice", token=users["alice"])
    async with app.run_test(size=first) as pilot:
        log = await open_chat(pilot, app, "bob")
        await wait_for(pilot, lambda: on_screen(log, "message 79"), "the newest message")
        await pilot.resize_terminal(*second)
        await pilot.pause()
        with api(server.url, "bob", users["bob"]) as bob:
            bob.send("alice", "arrived after the resize")
        await wait_for(pilot, lambda: on_screen(log, "arrived after the resize"), "on screen")
        assert log.follow and log.scroll_offset.y == log.max_scroll_y
        await wait_for(pilot, lambda: unread(server, users, "alice", "bob") == 0, "read")


async def test_scrolled_up_new_messages_show_a_marker_and_stay_unread(
    server: LiveServer, users: dict[str, str], tmp_path: Path
) -> None:
    befriend(server, users, "alice", "bob")
    fill(server, users, 80)
    read_all(server, users, "alice", "bob")
    app = app_for(server.url, tmp_path, user="alice", token=users["alice"])
    async with app.run_test(size=(80, 24)) as pilot:
        log = await open_chat(pilot, app, "bob")
        await wait_for(pilot, lambda: on_screen(log, "message 79"), "the newest message")
        await pilot.press("pageup", "pageup")
        assert not log.follow
        with api(server.url, "bob", users["bob"]) as bob:
            bob.send("alice", "new one")
            bob.send("alice", "new two")
        marker = app.screen.query_one("#new-marker")
        await wait_for(pilot, lambda: log.new_below == 2, "two new below")
        assert marker.display and "2 new messages below" in str(marker.render())
        assert not on_screen(log, "new two")
        await pilot.pause(0.5)
        assert unread(server, users, "alice", "bob") == 2, "not seen, so not read"
        assert app.screen.query_one(FriendList).friends["bob"].unread == 2

        await pilot.press("escape", "tab")  # the friend list, then the messages
        assert app.focused is log
        await pilot.press("end")
        await wait_for(pilot, lambda: on_screen(log, "new two"), "scrolled to the end")
        await wait_for(pilot, lambda: unread(server, users, "alice", "bob") == 0, "now read")
        assert log.new_below == 0 and not marker.display


async def test_opening_a_chat_shows_a_new_line_where_unread_messages_start(
    server: LiveServer, users: dict[str, str], tmp_path: Path
) -> None:
    befriend(server, users, "alice", "bob")
    fill(server, users, 60)
    read_all(server, users, "alice", "bob")
    with api(server.url, "bob", users["bob"]) as bob:
        for number in range(30):  # more than a screen of unread messages
            bob.send("alice", f"unread {number}")
    app = app_for(server.url, tmp_path, user="alice", token=users["alice"])
    async with app.run_test(size=(80, 24)) as pilot:
        log = await open_chat(pilot, app, "bob")
        await wait_for(pilot, lambda: on_screen(log, "\u2500\u2500 new "), "the new line shown")
        lines = log.screen_lines()
        new_at = next(i for i, line in enumerate(lines) if "\u2500\u2500 new " in line)
        assert "unread 0" in "\n".join(lines[new_at:]), "the first unread follows the line"
        assert not on_screen(log, "unread 29")
        await pilot.pause(0.5)
        left = unread(server, users, "alice", "bob")
        assert 0 < left < 30, "only what was on screen is read"
        assert log.new_below == left


async def test_every_message_has_its_time_and_days_are_separated(
    server: LiveServer, users: dict[str, str], tmp_path: Path
) -> None:
    befriend(server, users, "alice", "bob")
    now = FIXED_NOW.int_timestamp
    fill(server, users, 3, start=now - 86400 - 60)  # yesterday 15:08, 15:08, 15:08
    with api(server.url, "bob", users["bob"]) as bob:
        bob.send("alice", "today's")
    app = app_for(server.url, tmp_path, user="alice", token=users["alice"], clock=fixed_clock)
    async with app.run_test(size=(80, 24)) as pilot:
        log = await open_chat(pilot, app, "bob")
        await wait_for(pilot, lambda: on_screen(log, "today's"), "history")
        text = "\n".join(log.text_lines())
        assert "\u2500\u2500 Yesterday " in text
        assert "\u203a me \u00b7 15:08" in text and "  bob \u00b7 15:08" in text
        assert "ago" not in text


async def test_the_compact_layout_puts_each_message_on_one_line(
    server: LiveServer, users: dict[str, str], tmp_path: Path
) -> None:
    befriend(server, users, "alice", "bob")
    with api(server.url, "bob", users["bob"]) as bob:
        bob.send("alice", "short and sweet")
    app = app_for(server.url, tmp_path, user="alice", token=users["alice"], compact=True)
    async with app.run_test(size=(80, 24)) as pilot:
        log = await open_chat(pilot, app, "bob")
        await wait_for(pilot, lambda: on_screen(log, "short and sweet"), "history")
        line = next(line for line in log.screen_lines() if "short and sweet" in line)
        assert line.split(" ", 1)[1] == "bob: short and sweet"
        await pilot.press("f8")  # and back to the roomy layout
        await wait_for(pilot, lambda: on_screen(log, "  bob \u00b7 "), "two-line layout")


async def test_an_incoming_message_costs_the_same_with_20000_loaded(
    server: LiveServer, users: dict[str, str], tmp_path: Path
) -> None:
    befriend(server, users, "alice", "bob")
    fill(server, users, 20_000, text="filler {n}")
    read_all(server, users, "alice", "bob")
    with api(server.url, "bob", users["bob"]) as bob:
        bob.send("alice", "at the end")
    app = app_for(server.url, tmp_path, user="alice", token=users["alice"])
    async with app.run_test(size=(80, 24)) as pilot:
        log = await open_chat(pilot, app, "bob")
        await wait_for(pilot, lambda: on_screen(log, "at the end"), "the tail")
        pane = app.screen.query_one(ChatPane)
        # The client-side search (for servers without full-text search) fetches every
        # page back to the first message: 20,001 loaded.
        await pane.core.search("bob", "filler 0 and nothing else", None, lambda _: None)
        await wait_for(pilot, lambda: len(log.message_ids) == 20_001, "all loaded", timeout=60)
        log.focus()
        await pilot.press("end")
        await pilot.pause()
        assert log.follow
        wrapped, rendered = log.chat_layout.wrapped, log.rendered

        with api(server.url, "bob", users["bob"]) as bob:
            bob.send("alice", "one more")
        await wait_for(pilot, lambda: on_screen(log, "one more"), "the new message shown")
        assert log.chat_layout.wrapped - wrapped == 1, "only the new message was laid out"
        assert log.rendered - rendered <= 3, "only what is new on screen was rendered"

        composer = app.screen.query_one(Composer)
        composer.focus()
        wrapped, rendered = log.chat_layout.wrapped, log.rendered
        await type_text(pilot, "typing")
        assert composer.text == "typing"
        assert (log.chat_layout.wrapped, log.rendered) == (wrapped, rendered)


async def test_search_runs_in_a_worker_and_escape_stops_it(
    server: LiveServer, users: dict[str, str], tmp_path: Path
) -> None:
    """The slow path: a server without full-text search, searched page by page.

    A gate holds the second older page in flight, so Esc arrives mid-search on any
    machine (on a fast one the search used to reach the start before Esc did).
    """
    befriend(server, users, "alice", "bob")
    fill(server, users, 20_000, text="filler {n}")
    read_all(server, users, "alice", "bob")
    gate = HistoryGate(limit=SEARCH_PAGE, let_through=1)
    app = gated_app_for(server.url, tmp_path, gate, user="alice", token=users["alice"])
    async with app.run_test(size=(80, 24)) as pilot:
        log = await open_chat(pilot, app, "bob")
        await wait_for(pilot, lambda: len(log.message_ids) == 100, "the tail")
        app.screen.query_one(ChatPane).core.features.discard("search")  # as an older server
        await pilot.press("ctrl+f")
        await type_text(pilot, "nowhere to be found")
        await pilot.press("enter")
        await wait_for(pilot, lambda: gate.held == 1, "the second older page in flight")
        assert len(log.message_ids) == 100 + SEARCH_PAGE, "the first older page was searched"
        await pilot.press("escape")
        await wait_for(pilot, lambda: gate.cancelled == 1, "the page in flight abandoned")
        assert app.focused is app.screen.query_one(Composer)
        await type_text(pilot, "still typing")
        assert app.screen.query_one(Composer).text == "still typing"
        gate.open()
        await wait_for(
            pilot,
            lambda: all(w.is_finished for w in app.workers if w.group == "search"),
            "the search worker finished",
        )
        assert len(log.message_ids) == 100 + SEARCH_PAGE, "nothing more was fetched"
        assert gate.passed == 1 and gate.held == 1, "no page was asked for after Esc"


WIDE = [
    "\u4e2d\u6587\u5b57\u4e2d\u6587\u5b57 mixed \u4e2d\u6587",
    "heart \u2764\ufe0f thumbs \U0001f44d\U0001f3fd family "
    "\U0001f468\u200d\U0001f469\u200d\U0001f467 flag \U0001f1fa\U0001f1f8",
    "bidi \u202eevil\u202c zero\u200bwidth \u2066isolate\u2069",
]


def test_wide_characters_and_invisible_controls_never_shift_a_row() -> None:
    from textual.app import App, ComposeResult

    class Harness(App[None]):
        def compose(self) -> ComposeResult:
            yield ChatLog("alice", clock=fixed_clock, id="log")

    async def run() -> None:
        app = Harness()
        async with app.run_test(size=(40, 24)) as pilot:
            log = app.query_one(ChatLog)
            chat = Conversation("bob", "alice")
            now = FIXED_NOW.int_timestamp
            chat.merge([Message(i + 1, "bob", text, now) for i, text in enumerate(WIDE)])
            chat.loaded = True
            log.show(chat)
            log.loaded()
            await pilot.pause()
            width = log.scrollable_content_region.width
            for y in range(log.scrollable_content_region.height):
                strip = log.render_line(y)
                assert strip.cell_length == width
                assert cell_len(strip.text) == width
                assert "\ufe0f" not in strip.text and "\u200d" not in strip.text
                assert "\u202e" not in strip.text and "\u200b" not in strip.text
            text = "\n".join(log.text_lines())
            assert "\u27e8U+202E\u27e9evil\u27e8U+202C\u27e9" in text
            assert "zero\u27e8U+200B\u27e9width" in text
            assert "\u2764 thumbs \U0001f44d family \U0001f468\U0001f469\U0001f467" in text

    import asyncio

    asyncio.run(run())


async def test_long_and_wide_names_take_one_row_each_in_the_friend_list(
    server: LiveServer, tmp_path: Path
) -> None:
    from tests.support import http, register

    tokens = {name: register(server.url, name) for name in ("alice", "longname", "cjk")}
    for name, display in (
        ("longname", "A Display Name Far Too Long For Any Friend List Column"),
        (
            "cjk",
            "\u9577\u3044\u540d\u524d\u306e\u53cb\u9054\u304c\u3044\u307e\u3059" * 2
            + "\u2764\ufe0f",
        ),
    ):
        reply = http.post(
            f"{server.url}/register",
            data={"username": f"{name}2", "password": "correct horse", "display_name": display},
        )
        assert reply.status_code == 201
        tokens[f"{name}2"] = reply.json()["token"]
    befriend(server, tokens, "alice", "longname2", "cjk2")
    app = app_for(server.url, tmp_path, user="alice", token=tokens["alice"])
    async with app.run_test(size=(80, 24)) as pilot:
        friends = app.screen.query_one(FriendList)
        await wait_for(pilot, lambda: len(friends.friends) == 2, "both listed")
        await pilot.pause()
        rows = screen_text(app)
        for name in ("@longname2", "@cjk2"):
            at = next(i for i, row in enumerate(rows) if name in row)
            assert "\u2026" in rows[at - 1].split("\u2595")[0], "the name is cut with an ellipsis"
        for row in rows:
            assert cell_len(row) == 80
        listed = [row.split("\u2595")[0] for row in rows[1:6]]
        assert sum("@" in row for row in listed) == 2 and len(friends.options) == 2
