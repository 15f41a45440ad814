"""The seed's three endpoints, kept reply-compatible, plus their optional extensions.

A whole history (no ``after_id``, ``before_id`` or ``limit``: the seed's request)
is streamed a page at a time, so its memory stays flat however long it is.
"""

from __future__ import annotations

from flask import Blueprint, Response
from flask.typing import ResponseReturnValue

from backend.chat import parse_message
from backend.http import auth, parking, replies
from backend.http import request_data as data
from backend.http.context import services
from backend.usernames import canonical_username

bp = Blueprint("conversations", __name__)
MAX_PAGE = 1000


@bp.post("/create_conversation_db")
@auth.conversation
def create_conversation_db() -> ResponseReturnValue:
    pair = data.pair()
    signed_in = auth.allow_pair(pair)
    services().chat.create_conversation(
        pair, require_accounts=signed_in, viewer=auth.current_user() if signed_in else None
    )
    return replies.success()


@bp.post("/get_message_history")
@auth.conversation
def get_message_history() -> ResponseReturnValue:
    after_id = data.integer("after_id")
    before_id = data.integer("before_id", minimum=1)
    limit = data.integer("limit", minimum=1, maximum=MAX_PAGE)
    wait = parking.wait_seconds(data.seconds("wait"))
    pair = data.pair()
    signed_in = auth.allow_pair(pair)
    chat = services().chat
    if after_id is None and before_id is None and limit is None:
        pages = chat.whole_history(pair, require_accounts=signed_in)
        return Response(replies.history_stream(pages), mimetype="application/json")
    return parking.answer(
        lambda park: chat.history(
            pair,
            require_accounts=signed_in,
            after_id=after_id,
            before_id=before_id,
            limit=limit,
            wait=wait,
            waiter=auth.waiter(pair),
            park=park,
        ),
        replies.history,
    )


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
