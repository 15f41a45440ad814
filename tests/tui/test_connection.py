"""Connection, outbox and session: what the status line says, what a refused message
becomes, what two instances on one config folder keep, what signing out does."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support import LiveServer, ServerProcess, http, register
from tui.core.outbox import Outbox
from tui.screens.dialogs import SignOutDialog, UnsentDialog
from tui.screens.main import MainScreen
from tui.screens.signin import SignInScreen
from tui.widgets.chat_log import ChatLog
from tui.widgets.status_bar import StatusBar

from .conftest import api, app_for, befriend, open_chat, refused_by, type_text, wait_for

pytestmark = pytest.mark.anyio


async def test_an_idle_client_says_connected_within_two_seconds_of_the_server_returning(
    server_process: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    proc = server_process()
    users = {name: register(proc.url, name) for name in ("alice", "bob")}
    app = app_for(proc.url, tmp_path, user="alice", token=users["alice"])
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen), "the main screen")
        status = app.screen.query_one(StatusBar)
        await wait_for(pilot, lambda: status.state == "connected", "connected")
        proc.stop()
        await wait_for(pilot, lambda: status.state == "offline", "offline shown")
        await pilot.pause(8)  # idle and offline for a while: no growing backoff
        proc.start()
        back = time.monotonic()
        await wait_for(pilot, lambda: status.state == "connected", "connected again", timeout=10)
        assert time.monotonic() - back < 2.5, "the status returned within about 2 s"


async def test_a_signed_in_client_holds_one_request_on_the_server(
    server: LiveServer, users: dict[str, str], tmp_path: Path
) -> None:
    befriend(server, users, "alice", "bob")
    app = app_for(server.url, tmp_path, user="alice", token=users["alice"])
    notifier = server.services.notifier
    async with app.run_test(size=(80, 24)) as pilot:
        log = await open_chat(pilot, app, "bob")
        await wait_for(pilot, lambda: log.conversation and log.conversation.loaded, "loaded")
        await wait_for(pilot, lambda: notifier.waiting() == 1, "the feed's long-poll held")
        await pilot.pause(1.0)
        assert notifier.waiting() == 1, "one held request: the feed, none for the open chat"
        with api(server.url, "bob", users["bob"]) as bob:
            bob.send("alice", "woken by the feed")
        await wait_for(
            pilot, lambda: any("woken by the feed" in line for line in log.text_lines()), "shown"
        )


async def test_a_refused_message_can_be_retried_or_discarded_from_the_keyboard(
    server: LiveServer, users: dict[str, str], tmp_path: Path
) -> None:
    refused_by(server, users, "alice", "bob")
    app = app_for(server.url, tmp_path, user="alice", token=users["alice"])
    async with app.run_test(size=(80, 24)) as pilot:
        log = await open_chat(pilot, app, "bob")
        await type_text(pilot, "first try")
        await pilot.press("enter")
        await type_text(pilot, "let it go")
        await pilot.press("enter")
        status = app.screen.query_one(StatusBar)
        await wait_for(pilot, lambda: status.failed == 2, "both refused")
        assert sum("NOT SENT" in line for line in log.text_lines()) == 2

        with api(server.url, "bob", users["bob"]) as bob:
            bob.unblock_friend("alice")
        await pilot.press("f7")
        await wait_for(pilot, lambda: isinstance(app.screen, UnsentDialog), "the unsent list")
        await pilot.press("enter")  # retry the first
        await pilot.press("delete")  # discard the other
        await pilot.press("escape")
        await wait_for(pilot, lambda: status.failed == 0 and status.pending == 0, "resolved")
        await wait_for(
            pilot,
            lambda: (
                [m.text for m in api(server.url, "bob", users["bob"]).history("alice").messages]
                == ["first try"]
            ),
            "the retried message delivered",
        )
        assert not any("NOT SENT" in line for line in log.text_lines())
        assert Outbox(tmp_path / "outbox-alice.json").items == ()
    with api(server.url, "bob", users["bob"]) as bob:
        assert [m.text for m in bob.history("alice").messages] == ["first try"]


def test_two_instances_on_one_config_folder_keep_each_others_outbox(tmp_path: Path) -> None:
    path = tmp_path / "outbox-alice.json"
    first, second = Outbox(path), Outbox(path)  # both started, both offline
    a1 = first.add("bob", "from the first")
    second.add("bob", "from the second")
    first.add("carol", "first again")
    second.fail(a1.client_id, "blocked")
    first.retry(a1.client_id)
    texts = [item.text for item in Outbox(path).items]
    assert texts == ["from the first", "from the second", "first again"]
    assert not any(item.failed for item in Outbox(path).items)
    assert first.reload_if_changed() is False
    second.remove(a1.client_id)
    assert first.reload_if_changed() is True
    assert [item.text for item in first.items] == ["from the second", "first again"]


async def test_sign_out_revokes_the_token_and_deletes_it(
    server: LiveServer, users: dict[str, str], tmp_path: Path
) -> None:
    app = app_for(server.url, tmp_path, user="alice", token=users["alice"])
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen), "the main screen")
        await pilot.press("f9")
        await wait_for(pilot, lambda: isinstance(app.screen, SignOutDialog), "asked first")
        app.screen.query_one("#sign-out").press()
        await wait_for(pilot, lambda: isinstance(app.screen, SignInScreen), "signed out")
    assert "token" not in (tmp_path / "session.toml").read_text()
    reply = http.get(f"{server.url}/me", headers={"Authorization": f"Bearer {users['alice']}"})
    assert reply.status_code == 401


async def test_the_toast_for_a_chat_closes_when_the_chat_opens(
    server: LiveServer, users: dict[str, str], tmp_path: Path
) -> None:
    befriend(server, users, "alice", "bob", "carol")
    app = app_for(server.url, tmp_path, user="alice", token=users["alice"])
    async with app.run_test(size=(80, 24)) as pilot:
        await open_chat(pilot, app, "bob")
        with api(server.url, "carol", users["carol"]) as carol:
            carol.send("alice", "psst")
        await wait_for(
            pilot, lambda: any("unread" in n.message for n in app._notifications), "the toast"
        )
        await pilot.press("ctrl+n")
        log = app.screen.query_one(ChatLog)
        await wait_for(pilot, lambda: log.peer == "carol", "carol's chat")
        assert not any("unread" in n.message for n in app._notifications)
