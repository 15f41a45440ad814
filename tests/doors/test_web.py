"""The browser door in Debian's headless chromium, driven by Playwright.

The page is the TUI (textual-serve's terminal): the user signs in on the TUI's
own screen, reads, sends and sees a message arrive live. What the TUI drew is
read from the websocket frames the page received (the terminal draws on a
canvas). Every request the page makes is recorded: all go to the door. Closing
the tab ends that tab's TUI process and its whole process group.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import Page, WebSocket, sync_playwright

from tests.support import ServerProcess
from tui.client.blocking import BlockingClient

from .conftest import (
    Door,
    group_members,
    new_session,
    password_focused,
    plain,
    users_on,
    wait_until,
)

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PASSWORD = "correct horse"


@dataclass
class Tab:
    """A browser tab on the door, with everything it asked for and was sent."""

    page: Page
    requests: list[str] = field(default_factory=list)
    sockets: list[str] = field(default_factory=list)
    received: bytearray = field(default_factory=bytearray)
    csp: list[str] = field(default_factory=list)

    def watch(self, socket: WebSocket) -> None:
        self.sockets.append(socket.url)
        socket.on("framereceived", self._frame)

    def _frame(self, payload: str | bytes) -> None:
        if isinstance(payload, bytes):
            self.received += payload

    def drawn(self) -> str:
        return plain(bytes(self.received))

    def wait_for(self, text: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.drawn():
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} never drawn; got:\n{self.drawn()[-2000:]}")
            self.page.wait_for_timeout(100)  # lets Playwright deliver events

    def wait_until(self, predicate: Callable[[], object], what: str) -> None:
        deadline = time.monotonic() + 30
        while not predicate():
            assert time.monotonic() < deadline, f"timed out waiting for: {what}"
            self.page.wait_for_timeout(50)

    def type(self, text: str) -> None:
        self.page.keyboard.type(text)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Callable[[str], Tab]]:
    """Factory: a new tab of a fresh headless chromium on ``url``."""
    assert Path(CHROMIUM).exists(), "Debian's chromium is installed (apt-get install chromium)"
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=CHROMIUM,
            args=FLAGS,
            headless=True,
            viewport={"width": 1000, "height": 700},
        )

        def open_tab(url: str) -> Tab:
            tab = Tab(context.new_page())
            tab.page.on("request", lambda request: tab.requests.append(request.url))
            tab.page.on("websocket", tab.watch)
            response = tab.page.goto(url)
            assert response is not None and response.ok
            tab.csp.append(response.headers.get("content-security-policy", ""))
            return tab

        try:
            yield open_tab
        finally:
            context.close()


def test_sign_in_send_and_receive_in_the_browser(
    door_factory: Callable[..., Door],
    api: ServerProcess,
    browser: Callable[[str], Tab],
    tmp_path: Path,
) -> None:
    tokens = users_on(api.url, "alice", "bob")
    with BlockingClient(api.url, tokens["alice"], username="alice") as alice:
        alice.add_friend("bob")
    bob = BlockingClient(api.url, tokens["bob"], username="bob")
    bob.send("alice", "hello from bob")
    door = door_factory("web", api.url)
    origin = f"http://127.0.0.1:{door.port}"

    before = set(door.sessions())
    tab = browser(f"{origin}/")
    tab.wait_for("Sign in")
    pid = new_session(door, before)
    tab.page.locator(".xterm-helper-textarea").focus()  # keys to the terminal, no click
    tab.type("alice")
    tab.wait_for("alice")
    drawn = len(tab.received)
    tab.page.keyboard.press("Enter")
    tab.wait_until(lambda: password_focused(tab.received[drawn:]), "the password field focused")
    tab.type(PASSWORD)
    tab.page.keyboard.press("Enter")
    tab.wait_for("connected")
    tab.page.keyboard.press("Enter")  # open bob's chat
    tab.wait_for("hello from bob")
    tab.type("typed in a browser")
    tab.page.keyboard.press("Enter")
    wait_until(
        lambda: [m.text for m in bob.history("alice").messages][-1:] == ["typed in a browser"],
        "the browser's message stored",
    )
    bob.send("alice", "live from bob")
    tab.wait_for("live from bob")
    shot = tmp_path / "web-door.png"
    tab.page.screenshot(path=str(shot))
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000

    # Nothing came from anywhere but the door, and the page says so to the browser.
    assert tab.requests and all(url.startswith(f"{origin}/") for url in tab.requests)
    assert any(url.endswith(".ttf") for url in tab.requests), "the font is the door's"
    assert tab.sockets == [f"ws://127.0.0.1:{door.port}/ws?" + tab.sockets[0].split("?", 1)[1]]
    assert "default-src 'self'" in tab.csp[0]

    tab.page.close()
    wait_until(lambda: not group_members(pid), "the tab's TUI gone with the tab")
    bob.close()


def test_a_tab_whose_tui_does_not_quit_is_killed_when_it_closes(
    door_factory: Callable[..., Door], api: ServerProcess, browser: Callable[[str], Tab]
) -> None:
    door = door_factory("web", api.url)
    before = set(door.sessions())
    tab = browser(f"http://127.0.0.1:{door.port}/")
    tab.wait_for("Sign in")
    pid = new_session(door, before)
    os.kill(pid, signal.SIGSTOP)  # neither the quit message nor SIGHUP is handled
    tab.page.close()
    wait_until(lambda: not group_members(pid), "SIGKILL after the grace")
    assert door.sessions() == []


def test_the_door_caps_open_tabs(
    door_factory: Callable[..., Door], api: ServerProcess, browser: Callable[[str], Tab]
) -> None:
    door = door_factory("web", api.url, "--max-sessions", "1")
    first = browser(f"http://127.0.0.1:{door.port}/")
    first.wait_for("Sign in")
    second = browser(f"http://127.0.0.1:{door.port}/")
    second.wait_for("pairchat is full right now")
    assert len(door.sessions()) == 1
