"""The account screen (F10): change the password, sign out everywhere, script tokens."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import OptionList

from tests.support import LiveServer, http
from tui.screens.account import AccountScreen, ChangePasswordDialog
from tui.screens.dialogs import ConfirmDialog
from tui.screens.main import MainScreen
from tui.screens.signin import SignInScreen

from .conftest import PASSWORD, app_for, type_text, wait_for

pytestmark = pytest.mark.anyio


def me_status(server: LiveServer, token: str) -> int:
    return http.get(f"{server.url}/me", headers={"Authorization": f"Bearer {token}"}).status_code


async def test_change_password_signs_out_the_other_sessions(
    server: LiveServer, users: dict[str, str], tmp_path: Path
) -> None:
    other = http.post(f"{server.url}/login", data={"username": "alice", "password": PASSWORD})
    other_token = other.json()["token"]
    app = app_for(server.url, tmp_path, user="alice", token=users["alice"])
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen), "the main screen")
        await pilot.press("f10")
        await wait_for(pilot, lambda: isinstance(app.screen, AccountScreen), "the account")
        app.screen.query_one("#change-password").press()
        await wait_for(pilot, lambda: isinstance(app.screen, ChangePasswordDialog), "dialog")
        await type_text(pilot, "not my password")
        await pilot.press("enter")
        await type_text(pilot, "a new passphrase")
        await pilot.press("enter")
        await type_text(pilot, "a new passphrase")
        await pilot.press("enter")
        error = app.screen.query_one(".dialog-error")
        await wait_for(pilot, lambda: "wrong" in str(error.render()).lower(), "refused")
        for field in ("#current", "#new", "#again"):
            app.screen.query_one(field).value = ""  # type: ignore[attr-defined]
        app.screen.query_one("#current").focus()
        await type_text(pilot, PASSWORD)
        await pilot.press("enter")
        await type_text(pilot, "a new passphrase")
        await pilot.press("enter")
        await type_text(pilot, "a new passphrase")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, AccountScreen), "changed")
        assert me_status(server, users["alice"]) == 200, "this session stays signed in"
        assert me_status(server, other_token) == 401, "the other one is signed out"
    login = http.post(
        f"{server.url}/login", data={"username": "alice", "password": "a new passphrase"}
    )
    assert login.status_code == 200


async def test_sign_out_everywhere_ends_this_session_too(
    server: LiveServer, users: dict[str, str], tmp_path: Path
) -> None:
    app = app_for(server.url, tmp_path, user="alice", token=users["alice"])
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen), "the main screen")
        await pilot.press("f10")
        await wait_for(pilot, lambda: isinstance(app.screen, AccountScreen), "the account")
        app.screen.query_one("#logout-all").press()
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), "asked first")
        app.screen.query_one("#yes").press()
        await wait_for(pilot, lambda: isinstance(app.screen, SignInScreen), "signed out")
    assert me_status(server, users["alice"]) == 401
    assert "token" not in (tmp_path / "session.toml").read_text()


def make_script_token(server: LiveServer, session: str, name: str, scopes: str) -> dict[str, str]:
    reply = http.post(
        f"{server.url}/tokens",
        data={"name": name, "scopes": scopes},
        headers={"Authorization": f"Bearer {session}"},
    )
    assert reply.status_code == 201, reply.text
    made: dict[str, str] = reply.json()
    return made


async def test_script_tokens_are_listed_and_delete_revokes_one(
    server: LiveServer, users: dict[str, str], tmp_path: Path
) -> None:
    bot = make_script_token(server, users["alice"], "echo bot", "read,send")
    cron = make_script_token(server, users["alice"], "nightly", "read")
    app = app_for(server.url, tmp_path, user="alice", token=users["alice"])
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen), "the main screen")
        await pilot.press("f10")
        await wait_for(pilot, lambda: isinstance(app.screen, AccountScreen), "the account")
        screen = app.screen
        tokens = screen.query_one("#tokens-list", OptionList)
        await wait_for(pilot, lambda: tokens.option_count == 2, "both tokens listed")
        rows = [str(tokens.get_option_at_index(i).prompt) for i in range(2)]
        assert any("echo bot" in row and "read+send" in row for row in rows), rows
        assert any("nightly" in row and "[read]" in row for row in rows), rows
        assert bot["token"] not in str(rows) and cron["token"] not in str(rows)
        tokens.focus()
        tokens.highlighted = next(i for i, row in enumerate(rows) if "echo bot" in row)
        await pilot.press("delete")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), "asked first")
        app.screen.query_one("#yes").press()
        await wait_for(pilot, lambda: app.screen is screen, "back on the account")
        await wait_for(pilot, lambda: tokens.option_count == 1, "one token left")
        assert "nightly" in str(tokens.get_option_at_index(0).prompt)
        assert isinstance(app.screen, AccountScreen), "revoking keeps this session"
    assert me_status(server, bot["token"]) == 401, "revoked"
    assert me_status(server, cron["token"]) == 200, "the other one stays"
    assert me_status(server, users["alice"]) == 200
