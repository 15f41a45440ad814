"""A user's presence and privacy: typing signals and the settings that govern them."""

from __future__ import annotations

from flask import Blueprint
from flask.typing import ResponseReturnValue

from backend.http import auth, replies
from backend.http import request_data as data
from backend.http.context import services
from backend.services.preferences import parse_switch

bp = Blueprint("presence", __name__)


@bp.post("/typing")
@auth.user
def typing() -> ResponseReturnValue:
    services().typing.signal(auth.current_user(), data.username("username"))
    return replies.success()


@bp.post("/settings")
@auth.user
def settings() -> ResponseReturnValue:
    read_receipts = data.parsed("read_receipts", lambda v: parse_switch(v, "read_receipts"))
    typing = data.parsed("typing", lambda v: parse_switch(v, "typing"))
    privacy = services().preferences.change(
        auth.current_user(), read_receipts=read_receipts, typing=typing
    )
    return replies.settings(privacy)
