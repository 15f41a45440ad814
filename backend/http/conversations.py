"""The seed's three endpoints, kept reply-compatible, plus their optional extensions."""

from __future__ import annotations

from flask import Blueprint, g
from flask.typing import ResponseReturnValue

from backend.http import auth
from backend.http import request_data as data
from backend.http.services import services

bp = Blueprint("conversations", __name__)
MAX_PAGE = 1000


@bp.post("/create_conversation_db")
@auth.conversation
def create_conversation_db() -> ResponseReturnValue:
    services().chat.create_conversation(g.user, data.raw("user_one"), data.raw("user_two"))
    return {"success": True}


@bp.post("/get_message_history")
@auth.conversation
def get_message_history() -> ResponseReturnValue:
    page = services().chat.history(
        g.user,
        data.raw("user_one"),
        data.raw("user_two"),
        after_id=data.integer("after_id"),
        before_id=data.integer("before_id", minimum=1),
        limit=data.integer("limit", minimum=1, maximum=MAX_PAGE),
        wait=data.seconds("wait"),
    )
    return {"history": page.messages, "has_more": page.has_more}


@bp.post("/send_message/<username>")
@auth.conversation
def send_message(username: str) -> ResponseReturnValue:
    stored = services().chat.send(
        g.user, data.raw("author"), username, data.raw("message"), data.client_id()
    )
    return {
        "success": True,
        "id": stored.id,
        "date_sent": stored.date_sent,
        "duplicate": stored.duplicate,
    }
