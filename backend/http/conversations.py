"""The seed's three endpoints, kept reply-compatible, plus their optional extensions."""

from __future__ import annotations

from flask import Blueprint
from flask.typing import ResponseReturnValue

from backend.chat import parse_message
from backend.http import auth, replies
from backend.http import request_data as data
from backend.http.context import services
from backend.usernames import canonical_username

bp = Blueprint("conversations", __name__)
MAX_PAGE = 1000


@bp.post("/create_conversation_db")
@auth.conversation
def create_conversation_db() -> ResponseReturnValue:
    pair = data.pair()
    services().chat.create_conversation(pair, require_accounts=auth.allow_pair(pair))
    return replies.success()


@bp.post("/get_message_history")
@auth.conversation
def get_message_history() -> ResponseReturnValue:
    after_id = data.integer("after_id")
    before_id = data.integer("before_id", minimum=1)
    limit = data.integer("limit", minimum=1, maximum=MAX_PAGE)
    wait = data.seconds("wait")
    pair = data.pair()
    page = services().chat.history(
        pair,
        require_accounts=auth.allow_pair(pair),
        after_id=after_id,
        before_id=before_id,
        limit=limit,
        wait=wait,
    )
    return replies.history(page)


@bp.post("/send_message/<username>")
@auth.conversation
def send_message(username: str) -> ResponseReturnValue:
    client_id = data.client_id()
    author = data.username("author")
    signed_in = auth.allow_author(author)
    recipient = canonical_username(username, "username")  # from the path
    text = data.parsed("message", parse_message)
    stored = services().chat.send(author, recipient, text, client_id, require_accounts=signed_in)
    return replies.sent(stored)
