"""Account routes: register, login (rate limited on failure), logout, me."""

from __future__ import annotations

from flask import Blueprint, request
from flask.typing import ResponseReturnValue

from backend.errors import Unauthorized
from backend.http import auth
from backend.http import request_data as data
from backend.http.services import services

bp = Blueprint("accounts", __name__)


@bp.post("/register")
@auth.public
def register() -> ResponseReturnValue:
    user, token = services().accounts.register(
        data.raw("username"), data.raw("password"), data.raw("display_name")
    )
    body = {
        "success": True,
        "username": user.username,
        "display_name": user.display_name,
        "token": token,
    }
    return body, 201


@bp.post("/login")
@auth.public
def login() -> ResponseReturnValue:
    throttle = services().login_throttle
    username = data.raw("username")
    throttle.check(request.remote_addr, username)
    try:
        user, token = services().accounts.login(username, data.raw("password"))
    except Unauthorized:
        throttle.failed(request.remote_addr, username)
        raise
    return {
        "success": True,
        "username": user.username,
        "display_name": user.display_name,
        "token": token,
    }


@bp.post("/logout")
@auth.user
def logout() -> ResponseReturnValue:
    auth.current_user()
    token = auth.bearer_token()
    assert token is not None
    services().accounts.logout(token)
    return {"success": True}


@bp.get("/me")
@auth.user
def me() -> ResponseReturnValue:
    user = services().accounts.require_user(auth.current_user())
    return {"success": True, "username": user.username, "display_name": user.display_name}
