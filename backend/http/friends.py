"""Friends, blocks, read markers and the per-user change feed."""

from __future__ import annotations

from flask import Blueprint
from flask.typing import ResponseReturnValue

from backend.errors import BadRequest
from backend.http import auth
from backend.http import request_data as data
from backend.http.services import services

bp = Blueprint("friends", __name__)


def _set(**flags: int) -> ResponseReturnValue:
    services().chat.set_friend(auth.current_user(), data.raw("username"), **flags)
    return {"success": True}


@bp.post("/add_friend")
@auth.user
def add_friend() -> ResponseReturnValue:
    return _set(added=1, hidden=0)


@bp.post("/remove_friend")
@auth.user
def remove_friend() -> ResponseReturnValue:
    return _set(added=0, hidden=1)


@bp.post("/block_friend")
@auth.user
def block_friend() -> ResponseReturnValue:
    return _set(blocked=1)


@bp.post("/unblock_friend")
@auth.user
def unblock_friend() -> ResponseReturnValue:
    return _set(blocked=0)


@bp.get("/friends")
@auth.user
def friends() -> ResponseReturnValue:
    listed, blocked = services().chat.friends(auth.current_user())
    return {"friends": listed, "blocked": blocked}


@bp.post("/mark_read")
@auth.user
def mark_read() -> ResponseReturnValue:
    last_read_id = data.integer("last_read_id")
    if last_read_id is None:
        raise BadRequest("missing_field", "'last_read_id' is required")
    unread = services().chat.mark_read(auth.current_user(), data.raw("username"), last_read_id)
    return {"success": True, "unread": unread}


@bp.get("/updates")
@auth.user
def updates() -> ResponseReturnValue:
    feed = services().chat.updates(
        auth.current_user(), data.text("since", required=False), data.seconds("wait")
    )
    return {"cursor": feed.cursor, "changed": feed.changed}
