"""Friends, blocks, read markers and the per-user change feed."""

from __future__ import annotations

from flask import Blueprint
from flask.typing import ResponseReturnValue

from backend.core.errors import MissingField
from backend.http import auth, parking, replies
from backend.http import request_data as data
from backend.http.context import services

bp = Blueprint("friends", __name__)


def _set(**flags: int) -> ResponseReturnValue:
    services().chat.set_friend(auth.current_user(), data.username("username"), **flags)
    return replies.success()


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
    return replies.friends(services().chat.friends(auth.current_user()))


@bp.post("/mark_read")
@auth.user
def mark_read() -> ResponseReturnValue:
    last_read_id = data.integer("last_read_id")
    if last_read_id is None:
        raise MissingField("'last_read_id' is required")
    unread = services().chat.mark_read(auth.current_user(), data.username("username"), last_read_id)
    return replies.unread(unread)


@bp.get("/updates")
@auth.user
def updates() -> ResponseReturnValue:
    me, since = auth.current_user(), data.cursor("since")
    wait = parking.wait_seconds(data.seconds("wait"))
    return parking.answer(
        lambda parking: services().chat.updates(me, since, wait, parking=parking), replies.feed
    )
