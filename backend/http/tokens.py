"""Tokens for scripts: make one (its secret shown once), list them, revoke one.

A script token carries scopes (``read``, ``send``) and never expires for idleness,
only at its own ``expires_at`` if one was asked for; ``backend/http/auth.py``
decides what each scope allows. These routes themselves need a full session token.
"""

from __future__ import annotations

from flask import Blueprint
from flask.typing import ResponseReturnValue

from backend.http import auth, replies
from backend.http import request_data as data
from backend.http.context import services
from backend.services.accounts import MAX_EXPIRES_IN, parse_scopes, parse_token_name

bp = Blueprint("tokens", __name__)


@bp.post("/tokens")
@auth.user
def create_token() -> ResponseReturnValue:
    made = services().accounts.create_script_token(
        auth.current_user(),
        data.parsed("name", parse_token_name),
        data.parsed("scopes", parse_scopes),
        data.integer("expires_in", minimum=1, maximum=MAX_EXPIRES_IN),
    )
    return replies.new_token(made), 201


@bp.get("/tokens")
@auth.user
def list_tokens() -> ResponseReturnValue:
    return replies.tokens(services().accounts.script_tokens(auth.current_user()))


@bp.post("/tokens/revoke")
@auth.user
def revoke_token() -> ResponseReturnValue:
    token_id = data.text("id")
    assert token_id is not None
    services().lifecycle.revoke_script_token(auth.current_user(), token_id)
    return replies.success()
