"""Fixtures and helpers for the TUI tests: real servers, signed-in apps, waiting helpers.

The servers are the real backend (``live_server``/``server_process`` from
tests/conftest.py) on 127.0.0.1; nothing here mocks the backend or httpx.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import arrow
import httpx
import pytest
from textual import events
from textual.app import App
from textual.keys import _character_to_key
from textual.pilot import Pilot

from tests.support import LiveServer
from tui.app import PairchatApp, make_app
from tui.client.blocking import BlockingClient
from tui.client.http import PairchatClient
from tui.config import Config
from tui.formatting import Clock, system_clock
from tui.input_order import OrderedInput
from tui.screens.main import MainScreen
from tui.widgets.chat_log import ChatLog
from tui.widgets.friend_list import FriendList

PASSWORD = "correct horse"  # what tests.support.register uses
FIXED_NOW = arrow.get("2026-03-14T15:09:26+00:00")


def fixed_clock() -> arrow.Arrow:
    return FIXED_NOW


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def api(url: str, name: str, token: str) -> BlockingClient:
    """A blocking client acting as ``name`` (the other side of the conversation)."""
    return BlockingClient(url, token, username=name)


def app_for(
    url: str,
    config_dir: Path,
    *,
    user: str | None = None,
    token: str | None = None,
    clock: Clock = system_clock,
    compact: bool = False,
) -> PairchatApp:
    """The real app, signed in already when ``token`` is given (as after a restart)."""
    config = Config(server=url, user=user, config_dir=config_dir, compact=compact)
    if user and token:
        config.save_session(user, token)
    return make_app(config, clock=clock)


class HistoryGate(httpx.AsyncHTTPTransport):
    """httpx's real transport, with a gate: history requests for ``limit`` messages pass
    until ``let_through`` of them have, then each further one waits at the gate until
    :meth:`open` (or until its task is cancelled, which :attr:`cancelled` counts).

    It makes a race between the app and the server a fixed order: a test can act while
    a request is known to be in flight, instead of hoping to be faster than the server.
    """

    def __init__(self, limit: int, let_through: int) -> None:
        super().__init__()
        self.limit = str(limit)
        self.let_through = let_through
        self.passed = 0
        self.held = 0
        self.cancelled = 0
        self._open = asyncio.Event()

    def open(self) -> None:
        self._open.set()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        fields = parse_qs(request.content.decode()) if request.url.path.endswith("history") else {}
        if fields.get("limit") == [self.limit]:
            if self.passed >= self.let_through:
                self.held += 1
                try:
                    await self._open.wait()
                except asyncio.CancelledError:
                    self.cancelled += 1
                    raise
            self.passed += 1
        return await super().handle_async_request(request)


def gated_app_for(
    url: str, config_dir: Path, gate: HistoryGate, *, user: str, token: str
) -> PairchatApp:
    """:func:`app_for`, its client's requests going through ``gate``."""
    config = Config(server=url, user=user, config_dir=config_dir)
    config.save_session(user, token)
    return make_app(config, PairchatClient(url, transport=gate))


async def settled(app: App[Any]) -> None:
    """Until every message pump of ``app`` is idle: the app's own condition
    (:meth:`tui.input_order.OrderedInput.settled`), not Textual's guess from CPU time,
    which a loaded machine fools (a snapshot once caught the sign-in form before its
    field had the focus)."""

    async def route(event: object) -> None:
        raise AssertionError("settling routes no input")

    await OrderedInput(app, route).settled()


async def wait_for(
    pilot: Pilot[None], predicate: Callable[[], object], what: str, timeout: float = 15.0
) -> None:
    """Let the app run until ``predicate()`` holds; fail with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for: {what}")
        await pilot.pause(0.05)


async def open_chat(pilot: Pilot[None], app: PairchatApp, peer: str) -> ChatLog:
    """From sign-in to ``peer``'s chat on screen: the main screen, ``peer`` listed and
    highlighted, Enter; returns the chat log."""
    await wait_for(pilot, lambda: isinstance(app.screen, MainScreen), "the main screen")
    friends = app.screen.query_one(FriendList)
    await wait_for(pilot, lambda: peer in friends.friends, f"{peer} listed")
    friends.highlight(peer)
    await pilot.press("enter")
    log = app.screen.query_one(ChatLog)
    await wait_for(pilot, lambda: log.peer == peer, f"{peer}'s chat open")
    return log


async def type_text(pilot: Pilot[None], text: str) -> None:
    await pilot.press(*text)  # single characters are translated to key names


KEY_NAMES = {"\r": "enter", "\n": "ctrl+j", " ": "space"}


async def burst(pilot: Pilot[None], text: str) -> None:
    """Keys as a fast typist or an unbracketed paste delivers them: all queued at once,
    before the app handles any (``pilot.press`` waits for the app between keys)."""
    driver = pilot.app._driver
    assert driver is not None
    for char in text:
        key = KEY_NAMES.get(char) or (char if char.isalnum() else _character_to_key(char))
        event = events.Key(key, char if char not in "\r\n" else None)
        event.set_sender(pilot.app)
        driver.send_message(event)
    await pilot.pause()


async def paste(pilot: Pilot[None], text: str) -> None:
    """A bracketed paste, as the terminal reports it."""
    driver = pilot.app._driver
    assert driver is not None
    event = events.Paste(text)
    event.set_sender(pilot.app)
    driver.send_message(event)
    await pilot.pause()


def screen_text(app: PairchatApp) -> list[str]:
    """The whole screen as the user sees it, one string per row."""
    return [strip.text for strip in app.screen._compositor.render_strips()]


def fill(
    server: LiveServer,
    users: dict[str, str],
    count: int,
    *,
    pair: tuple[str, str] = ("alice", "bob"),
    text: str = "message {n}",
    start: int | None = None,
) -> None:
    """Store ``count`` messages in the pair's file fast, as the seed server would have:
    rows of the seed's ``conversation`` table, which the contract keeps readable."""
    one, two = pair
    with api(server.url, one, users[one]) as client:
        client.create_conversation(two)
    first = int(time.time()) - count if start is None else start
    rows = [(two if n % 2 else one, text.format(n=n), str(first + n)) for n in range(count)]
    path = server.data_dir / f"{'_'.join(sorted(pair))}.db"
    with contextlib.closing(sqlite3.connect(path, timeout=30)) as db, db:
        db.executemany(
            "INSERT INTO conversation (author, message, date_sent) VALUES (?, ?, ?)", rows
        )


def stored(server: LiveServer, users: dict[str, str], me: str, other: str) -> list[str]:
    """The texts of the pair's history as the server has them (asked as ``me``)."""
    with api(server.url, me, users[me]) as client:
        return [m.text for m in client.history(other).messages]


def unread(server: LiveServer, users: dict[str, str], me: str, other: str) -> int:
    """``me``'s unread count with ``other``, as the server has it."""
    with api(server.url, me, users[me]) as client:
        return next(f.unread for f in client.friends().friends if f.username == other)


def read_all(server: LiveServer, users: dict[str, str], me: str, other: str) -> None:
    """Mark the pair read up to its newest message, as another device of ``me`` would."""
    with api(server.url, me, users[me]) as client:
        newest = client.history(other, limit=1).messages
        client.mark_read(other, newest[-1].id if newest else 0)


def befriend(server: LiveServer, users: dict[str, str], me: str, *others: str) -> None:
    with api(server.url, me, users[me]) as client:
        for other in others:
            client.add_friend(other)


def refused_by(server: LiveServer, users: dict[str, str], me: str, other: str) -> None:
    """``me`` has ``other`` as a friend, and ``other`` has blocked ``me``: what ``me``
    sends them is refused for good (NOT SENT, F7)."""
    befriend(server, users, me, other)
    with api(server.url, other, users[other]) as them:
        them.block_friend(me)
