"""Account routes: register, login, logout, me, and the account's lifecycle.

Password checks cost memory and time, so each is paid for before it runs:
``/login`` reserves one from the client address's failed-login budget
(``LoginThrottle``) and gives it back when the password was right; the same
holds for the current password asked by ``/change_password`` and
``/delete_account``. ``request.remote_addr`` is the real client's address when
the server trusts its proxies (``--trusted-proxies``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from flask import Blueprint, request
from flask.typing import ResponseReturnValue

from backend.core.errors import BadCredentials, WrongPassword
from backend.http import auth, replies
from backend.http import request_data as data
from backend.http.context import services
from backend.limits.hash_gate import for_account
from backend.services.accounts import parse_display_name, parse_invite, parse_password

bp = Blueprint("accounts", __name__)
T = TypeVar("T")


def _password_checked(check: Callable[[], T], account: str, *, signed_in: bool = True) -> T:
    """Run ``check`` (which verifies ``account``'s password) within the address's failed-login
    budget, and within the account's share of the password-check queue.

    For a signed-in user a wrong password is ``403 wrong_password``, not a 401.
    """
    throttle = services().login_throttle
    address = request.remote_addr
    throttle.reserve(address)
    try:
        with for_account(account):
            result = check()
    except BadCredentials as exc:  # a wrong password keeps its cost
        if signed_in:
            raise WrongPassword("the current password is wrong") from exc
        raise
    except BaseException:
        throttle.succeeded(address)  # no password was judged wrong
        raise
    throttle.succeeded(address)
    return result


@bp.post("/register")
@auth.public
def register() -> ResponseReturnValue:
    user, token = services().accounts.register(
        data.username("username"),
        data.parsed("password", parse_password),
        data.parsed("display_name", parse_display_name),
        address=request.remote_addr,
        invite=data.parsed("invite", parse_invite),
    )
    return replies.account(user, token), 201


@bp.post("/login")
@auth.public
def login() -> ResponseReturnValue:
    # Read leniently: a malformed name or password is a wrong login (401), not a 400.
    username = data.text_or_empty("username")
    password = data.text_or_empty("password")
    user, token = _password_checked(
        lambda: services().accounts.login(username, password, request.remote_addr),
        username,
        signed_in=False,
    )
    return replies.account(user, token)


@bp.post("/logout")
@auth.user
def logout() -> ResponseReturnValue:
    token = auth.bearer_token()
    assert token is not None
    services().lifecycle.sign_out(auth.current_user(), token)
    return replies.success()


@bp.post("/logout_all")
@auth.user
def logout_all() -> ResponseReturnValue:
    revoked = services().lifecycle.sign_out_everywhere(auth.current_user())
    return replies.revoked(revoked)


@bp.post("/change_password")
@auth.user
def change_password() -> ResponseReturnValue:
    me = auth.current_user()
    token = auth.bearer_token()
    assert token is not None
    current = data.text_or_empty("password")
    new = data.parsed("new_password", lambda value: parse_password(value, "new_password"))
    revoked = _password_checked(
        lambda: services().lifecycle.change_password(me, current, new, token, request.remote_addr),
        me,
    )
    return replies.revoked(revoked)


@bp.post("/delete_account")
@auth.user
def delete_account() -> ResponseReturnValue:
    me = auth.current_user()
    password = data.text_or_empty("password")
    _password_checked(
        lambda: services().lifecycle.delete_account(me, password, request.remote_addr), me
    )
    return replies.success()


@bp.get("/me")
@auth.user
def me() -> ResponseReturnValue:
    return replies.account(services().accounts.require_user(auth.current_user()))
