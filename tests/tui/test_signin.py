"""The sign-in screen: sign in, register, inline errors, the saved token, PAIRCHAT_PASSWORD."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from textual.widgets import Input, Static

from tests.support import LiveServer, free_port
from tui.app import make_app
from tui.config import Config
from tui.screens.main import MainScreen
from tui.screens.signin import SignInScreen
from tui.widgets.friend_list import FriendList
from tui.widgets.status_bar import StatusBar

from .conftest import PASSWORD, app_for, type_text, wait_for

pytestmark = pytest.mark.anyio


def error_text(app: object) -> str:
    screen = app.screen  # type: ignore[attr-defined]
    return str(screen.query_one("#signin-error", Static).render())


async def test_sign_in_with_the_form_saves_the_token_owner_only(
    server: LiveServer, users: dict[str, str], tmp_path: Path
) -> None:
    app = app_for(server.url, tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, SignInScreen), "the sign-in screen")
        assert app.focused is app.screen.query_one("#username", Input)
        await type_text(pilot, "alice")
        await pilot.press("tab")
        await type_text(pilot, "wrong password")
        await pilot.press("enter")
        await wait_for(pilot, lambda: "Wrong username or password" in error_text(app), "error")
        password = app.screen.query_one("#password", Input)
        password.value = ""
        password.focus()
        await type_text(pilot, PASSWORD)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen), "the main screen")
        await wait_for(
            pilot, lambda: app.focused is app.screen.query_one(FriendList), "friends focused"
        )
    session = tmp_path / "session.toml"
    assert stat.S_IMODE(os.stat(session).st_mode) == 0o600
    saved = Config(server=server.url, config_dir=tmp_path).saved_session()
    assert saved is not None and saved[0] == "alice"

    # A restart stays signed in: no form.
    again = app_for(server.url, tmp_path)
    async with again.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(again.screen, MainScreen), "signed in again")
        status = again.screen.query_one(StatusBar)
        await wait_for(pilot, lambda: status.connection_text == "connected", "connected")
        assert status.username == "alice"


async def test_register_and_name_taken(server: LiveServer, tmp_path: Path) -> None:
    app = app_for(server.url, tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await type_text(pilot, "erin")
        await pilot.press("tab")
        await type_text(pilot, "a long enough password")
        app.screen.query_one("#display-name", Input).value = "Erin [b]E[/b]"
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen), "registered")
        status = app.screen.query_one(StatusBar)
        await wait_for(pilot, lambda: "Erin [b]E[/b]" in str(status.render()), "display name")

    other = app_for(server.url, tmp_path / "other")
    async with other.run_test(size=(80, 24)) as pilot:
        await type_text(pilot, "ERIN")
        await pilot.press("tab")
        await type_text(pilot, "another password")
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: "username is taken" in error_text(other), "name taken")
        assert isinstance(other.screen, SignInScreen)


async def test_unreachable_server_is_reported_with_its_url(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    app = app_for(url, tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await type_text(pilot, "alice")
        await pilot.press("tab")
        await type_text(pilot, "whatever password")
        await pilot.press("enter")
        await wait_for(pilot, lambda: "Cannot reach" in error_text(app), "unreachable error")
        assert url in error_text(app)


async def test_pairchat_password_signs_in_without_the_form(
    server: LiveServer, users: dict[str, str], tmp_path: Path
) -> None:
    config = Config(server=server.url, user="bob", password=PASSWORD, config_dir=tmp_path)
    app = make_app(config)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen), "signed in")
        assert app.screen.query_one(StatusBar).username == "bob"


async def test_a_revoked_token_leads_back_to_the_form(
    server: LiveServer, users: dict[str, str], tmp_path: Path
) -> None:
    app = app_for(server.url, tmp_path, user="alice", token="not-a-valid-token")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, SignInScreen), "back to the form")
        assert "session has ended" in error_text(app)
    assert Config(server=server.url, config_dir=tmp_path).saved_session() is None
