"""The doors are front doors: each visitor is themselves, no site can borrow them, nobody
can squat them.

Before: every door user was the door's address (127.0.0.1) to the API, so one
address's sign-ups or wrong passwords locked out everyone ("Too many failed
attempts. Wait a minute"); the browser door took a websocket from any Origin and
built its page from the request's Host; one client could open every tab, and a
claim screen or sign-in tab left alone stayed open (still there after 690 s).

The SSH tests use the real OpenSSH client from distinct loopback addresses
(``ssh -b 127.0.0.N``) in tmux; the web tests use raw websockets (aiohttp) with
the Origin and source address a test chooses, and Debian's chromium.
"""

from __future__ import annotations

import asyncio
import re
import shlex
import time
from collections.abc import Callable
from pathlib import Path

import aiohttp
import pytest

from doors.secret import client_proof
from tests.support import ServerProcess

from .conftest import (
    DOOR_SECRET,
    FIRST_SCREEN,
    Door,
    Tmux,
    environ,
    group_members,
    new_session,
    wait_until,
)
from .test_web import Tab, browser  # noqa: F401  (the chromium fixture)

Start = Callable[..., ServerProcess]


def ssh_from(door: Door, key: Path, address: str) -> str:
    """``ssh -b ADDRESS`` as a user types it; then EXITED and the status."""
    ssh = ["ssh", "-b", address, "-p", str(door.port), "-i", str(key)]
    ssh += ["-o", "IdentitiesOnly=yes", "-o", "StrictHostKeyChecking=no"]
    ssh += ["-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "127.0.0.1"]
    return f"{shlex.join(ssh)}; echo EXITED $?; sleep 60"


def claim(tmux: Tmux, door: Door, key: Path, address: str, username: str) -> str:
    """A new key from ``address`` claims ``username``; the screen after the answer."""
    if tmux.has_session():
        tmux("kill-session", "-t", "pane")
    tmux.open(ssh_from(door, key, address))
    tmux.wait_for(FIRST_SCREEN)
    tmux.wait_focused("letters, digits, hyphens", "the username field focused")
    tmux.type("-l", username)
    tmux.type("Enter")
    wait_until(
        lambda: "connected" in tmux.screen() or "Too many" in tmux.screen(),
        f"an answer to claiming {username}",
    )
    return tmux.screen()


# -- the SSH door ------------------------------------------------------------------------
def test_new_ssh_users_are_counted_per_address_and_told_which_limit(
    server_process: Start,
    door_factory: Callable[..., Door],
    new_key: Callable[[str], Path],
    tmux: Tmux,
) -> None:
    """One sign-up an hour per address (the real limit is 10): the second new key from
    127.0.0.2 is refused with the registration limit's own words; a new key from
    127.0.0.3 claims its name (before: refused, 127.0.0.1's hour was spent)."""
    api = server_process(
        env={"PAIRCHAT_DOOR_SECRET": DOOR_SECRET, "PAIRCHAT_REGISTER_RATE_LIMIT": "1 per hour"}
    )
    door = door_factory("ssh", api.url)
    # The session's TUI tells the API who its visitor is: the claim counts for 127.0.0.2.
    assert "connected" in claim(tmux, door, new_key("first"), "127.0.0.2", "first")

    screen = claim(tmux, door, new_key("second"), "127.0.0.2", "second")
    assert "Too many new accounts from your address: try again in" in screen, screen
    assert "failed attempts" not in screen

    assert "connected" in claim(tmux, door, new_key("third"), "127.0.0.3", "third")


def test_an_idle_claim_screen_ends(
    api: ServerProcess,
    door_factory: Callable[..., Door],
    new_key: Callable[[str], Path],
    tmux: Tmux,
) -> None:
    """Nobody types on the claim screen: the session ends after --signin-idle (2 s here;
    5 minutes by default) and its slot is free (before: still open after 690 s)."""
    door = door_factory("ssh", api.url, "--signin-idle", "2")
    before = set(door.sessions())
    tmux.open(ssh_from(door, new_key("idler"), "127.0.0.4"))
    tmux.wait_for(FIRST_SCREEN)
    pid = new_session(door, before)
    screen = tmux.wait_for("EXITED", timeout=30)
    assert "without a key pressed" in screen, screen
    wait_until(lambda: not group_members(pid), "the idle session's processes gone")
    assert door.sessions() == []


def test_a_claim_screen_kept_alive_by_keys_still_ends(
    api: ServerProcess,
    door_factory: Callable[..., Door],
    new_key: Callable[[str], Path],
    tmux: Tmux,
) -> None:
    """A squatter pressing a key more often than --signin-idle (2 s here) still loses the
    claim screen after three idle periods in all (before: the slot was held for good)."""
    door = door_factory("ssh", api.url, "--signin-idle", "2")
    tmux.open(ssh_from(door, new_key("squatter"), "127.0.0.5"))
    tmux.wait_for(FIRST_SCREEN)
    deadline = time.monotonic() + 30
    while "EXITED" not in (screen := tmux.screen()):
        assert time.monotonic() < deadline, screen
        tmux.type("x")  # well inside each 2-s idle period
        time.sleep(0.5)  # the squatter's own pace, not a wait for the server
    assert "nobody signed in within 6 s" in screen, screen


# -- the web door: raw websockets --------------------------------------------------------
async def _socket(
    door: Door,
    *,
    origin: str | None = None,
    source: str = "127.0.0.1",
    headers: dict[str, str] | None = None,
) -> tuple[aiohttp.ClientSession, aiohttp.ClientWebSocketResponse]:
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=(source, 0)))
    try:
        socket = await session.ws_connect(
            f"http://127.0.0.1:{door.port}/ws?width=80&height=24",
            origin=origin if origin is not None else f"http://127.0.0.1:{door.port}",
            headers=headers or {},
        )
    except BaseException:
        await session.close()
        raise
    return session, socket


async def _first_text(socket: aiohttp.ClientWebSocketResponse) -> str:
    """What the door sent first (a refusal) or b"" if the TUI started drawing instead."""
    message = await socket.receive(timeout=30)
    if message.type == aiohttp.WSMsgType.BINARY:
        return bytes(message.data).decode("utf-8", "replace")
    return str(message.data)


def test_a_foreign_origin_cannot_open_a_session(
    api: ServerProcess, door_factory: Callable[..., Door]
) -> None:
    door = door_factory("web", api.url)

    async def run() -> None:
        for origin in ("http://evil.example", "null", f"http://127.0.0.1:{door.port + 1}", ""):
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await _socket(door, origin=origin)
            assert refused.value.status == 403, origin
        session, socket = await _socket(door)  # the door's own page's origin
        await socket.close()
        await session.close()

    asyncio.run(run())
    assert "Origin 'http://evil.example' is not this door's" in door.log()
    wait_until(lambda: door.sessions() == [], "the one real tab gone")


def test_the_page_is_built_from_the_doors_url_not_the_host_header(
    api: ServerProcess, door_factory: Callable[..., Door]
) -> None:
    door = door_factory("web", api.url)
    public = door_factory("web", api.url, "--public-url", "https://chat.example.org/")

    async def page(target: Door) -> str:
        async with aiohttp.ClientSession() as session:
            url = f"http://127.0.0.1:{target.port}/"
            async with session.get(url, headers={"Host": "evil.example"}) as reply:
                assert reply.status == 200
                return await reply.text()

    plain, behind_tls = asyncio.run(page(door)), asyncio.run(page(public))
    assert "evil.example" not in plain and "evil.example" not in behind_tls
    assert f'data-session-websocket-url="ws://127.0.0.1:{door.port}/ws"' in plain
    assert 'data-session-websocket-url="wss://chat.example.org/ws"' in behind_tls
    assert re.search(r'src="https://chat\.example\.org/static/js/textual\.js"', behind_tls)

    async def origins() -> None:
        session, socket = await _socket(public, origin="https://chat.example.org")
        await socket.close()
        await session.close()
        with pytest.raises(aiohttp.WSServerHandshakeError):
            await _socket(public, origin="http://chat.example.org")  # not over TLS

    asyncio.run(origins())


def test_one_address_cannot_take_every_tab(
    api: ServerProcess, door_factory: Callable[..., Door]
) -> None:
    """Two tabs per address here (10 by default): a third from 127.0.0.5 is refused, a
    tab from 127.0.0.6 still opens (before: one client opened all 100)."""
    door = door_factory("web", api.url, "--tabs-per-address", "2")

    async def run() -> None:
        opened = [await _socket(door, source="127.0.0.5") for _ in range(2)]
        third = await _socket(door, source="127.0.0.5")
        opened.append(third)
        assert "too many pairchat tabs are open from your address" in await _first_text(third[1])
        other = await _socket(door, source="127.0.0.6")
        opened.append(other)
        assert "too many" not in await _first_text(other[1])
        wait_until(lambda: len(door.sessions()) == 3, "three tabs' TUIs")
        for session, socket in opened:
            await socket.close()
            await session.close()

    asyncio.run(run())
    wait_until(lambda: door.sessions() == [], "every tab's TUI gone")


@pytest.mark.parametrize("trusted", [False, True])
def test_the_web_visitor_is_the_socket_or_what_a_trusted_proxy_says(
    api: ServerProcess, door_factory: Callable[..., Door], trusted: bool
) -> None:
    args = ("--trusted-proxy", "127.0.0.1") if trusted else ()
    door = door_factory("web", api.url, *args)
    forwarded = {"X-Forwarded-For": "198.51.100.1, 203.0.113.8"}

    async def run(source: str) -> str:
        before = set(door.sessions())
        session, socket = await _socket(door, source=source, headers=forwarded)
        try:
            pid = new_session(door, before)
            # Forked, then exec'ed with the tab's environment: wait for the exec.
            wait_until(lambda: "PAIRCHAT_SERVER" in environ(pid), "the tab's TUI exec'ed")
            env = environ(pid)
            address = env.get("PAIRCHAT_CLIENT_ADDRESS", "")
            # The door's proof of that one address, never the door secret itself.
            assert env["PAIRCHAT_CLIENT_PROOF"] == client_proof(DOOR_SECRET, address)
            assert DOOR_SECRET not in "\0".join(env.values())
            return address
        finally:
            await socket.close()
            await session.close()

    # Through the trusted proxy, the address it added; else the socket's, whatever it says.
    assert asyncio.run(run("127.0.0.1")) == ("203.0.113.8" if trusted else "127.0.0.1")
    assert asyncio.run(run("127.0.0.7")) == "127.0.0.7"  # not the proxy: not believed
    wait_until(lambda: door.sessions() == [], "the tabs' TUIs gone")


# -- the web door in chromium ------------------------------------------------------------
def test_an_idle_sign_in_tab_ends(
    api: ServerProcess,
    door_factory: Callable[..., Door],
    browser: Callable[[str], Tab],  # noqa: F811
) -> None:
    """A tab left on the sign-in screen ends after --signin-idle (2 s here) and says so."""
    door = door_factory("web", api.url, "--signin-idle", "2")
    before = set(door.sessions())
    tab = browser(f"http://127.0.0.1:{door.port}/")
    tab.wait_for("Sign in")
    pid = new_session(door, before)
    tab.wait_until(lambda: tab.page.locator("body.-closed").count() == 1, "the ended notice")
    assert tab.page.get_by_text("The pairchat session ended.").is_visible()
    wait_until(lambda: not group_members(pid), "the tab's TUI gone")
