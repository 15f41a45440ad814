"""Account routes: register, login (rate limited on failure), logout, me."""

from __future__ import annotations

from flask import Blueprint, request
from flask.typing import ResponseReturnValue

from backend.accounts import parse_display_name, parse_password
from backend.errors import BadCredentials
from backend.http import auth, replies
from backend.http import request_data as data
from backend.http.context import services

bp = Blueprint("accounts", __name__)


@bp.post("/register")
@auth.public
def register() -> ResponseReturnValue:
    user, token = services().accounts.register(
        data.username("username"),
        data.parsed("password", parse_password),
        data.parsed("display_name", parse_display_name),
    )
    return replies.account(user, token), 201


@bp.post("/login")
@auth.public
def login() -> ResponseReturnValue:
    # Read leniently: a malformed name or password is a wrong login (401), not a 400.
    username = data.text_or_empty("username")
    throttle = services().login_throttle
    throttle.check(request.remote_addr, username)
    try:
        user, token = services().accounts.login(username, data.text_or_empty("password"))
    except BadCredentials:
        throttle.failed(request.remote_addr, username)
        raise
    return replies.account(user, token)


@bp.post("/logout")
@auth.user
def logout() -> ResponseReturnValue:
    auth.current_user()
    token = auth.bearer_token()
    assert token is not None
    services().accounts.logout(token)
    return replies.success()


@bp.get("/me")
@auth.user
def me() -> ResponseReturnValue:
    return replies.account(services().accounts.require_user(auth.current_user()))
