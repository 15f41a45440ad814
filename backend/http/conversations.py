"""The seed's three endpoints, kept reply-compatible, plus their optional extensions,
and the conversation features that act on one pair: edit, delete, react, search.

A whole history (no cursor and no ``limit``: the seed's request) is streamed a
page at a time, so its memory stays flat however long it is.
"""

from __future__ import annotations

from flask import Blueprint, Response
from flask.typing import ResponseReturnValue

from backend.core.errors import Forbidden, InvalidField, MissingField
from backend.core.usernames import canonical_username
from backend.http import auth, parking, replies
from backend.http import request_data as data
from backend.http.context import services
from backend.services.chat import parse_message
from backend.services.edits import parse_emoji
from backend.services.search import DEFAULT_RESULTS, MAX_RESULTS, parse_query

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
    after_rev = data.integer("after_rev")
    around_id = data.integer("around_id", minimum=1)
    limit = data.integer("limit", minimum=1, maximum=MAX_PAGE)
    asked = data.seconds("wait")
    if asked and after_id is None and after_rev is None:
        raise InvalidField("'wait' holds a request with 'after_id' or 'after_rev' only")
    wait = parking.wait_seconds(asked)
    pair = data.pair()
    signed_in = auth.allow_pair(pair)
    chat = services().chat
    cursors = (after_id, before_id, after_rev, around_id, limit)
    if all(value is None for value in cursors):
        stream = chat.whole_history(pair, require_accounts=signed_in)
        body = replies.history_stream(stream.pages, stream.rev)
        return Response(body, mimetype="application/json")
    return parking.answer(
        lambda parking: chat.history(
            pair,
            require_accounts=signed_in,
            after_id=after_id,
            before_id=before_id,
            after_rev=after_rev,
            around_id=around_id,
            limit=limit,
            wait=wait,
            waiter=auth.waiter(pair),
            parking=parking,
        ),
        replies.history,
    )


@bp.post("/send_message/<username>")
@auth.conversation
def send_message(username: str) -> ResponseReturnValue:
    client_id = data.client_id()
    reply_to = data.integer("reply_to", minimum=1)
    author = data.username("author")
    signed_in = auth.allow_author(author)
    recipient = canonical_username(username, "username")  # from the path
    text = data.parsed("message", parse_message)
    stored = services().chat.send(
        author, recipient, text, client_id, require_accounts=signed_in, reply_to=reply_to
    )
    return replies.sent(stored)


def _message_id() -> int:
    message_id = data.integer("id", minimum=1)
    if message_id is None:
        raise MissingField("'id' is required: the message's id")
    return message_id


@bp.post("/edit_message")
@auth.conversation
def edit_message() -> ResponseReturnValue:
    message_id = _message_id()
    pair = data.pair()
    signed_in = auth.allow_pair(pair)
    text = data.parsed("message", parse_message)
    editor = auth.current_user() if signed_in else None
    return replies.changed(services().edits.edit(pair, message_id, text, editor=editor))


@bp.post("/delete_message")
@auth.conversation
def delete_message() -> ResponseReturnValue:
    message_id = _message_id()
    pair = data.pair()
    signed_in = auth.allow_pair(pair)
    editor = auth.current_user() if signed_in else None
    return replies.changed(services().edits.delete(pair, message_id, editor=editor))


@bp.post("/react")
@auth.conversation
def react() -> ResponseReturnValue:
    message_id = _message_id()
    pair = data.pair()
    signed_in = auth.allow_pair(pair)
    emoji = data.parsed("emoji", parse_emoji)
    if signed_in:
        reactor = auth.current_user()
    else:  # open mode's anonymous client names who reacts
        reactor = data.username("username")
        if reactor not in pair:
            raise Forbidden("'username' must be one of the pair")
    changed = services().edits.react(pair, message_id, emoji, reactor=reactor, signed_in=signed_in)
    return replies.changed(changed)


@bp.post("/search_messages")
@auth.conversation
def search_messages() -> ResponseReturnValue:
    before_id = data.integer("before_id", minimum=1)
    limit = data.integer("limit", minimum=1, maximum=MAX_RESULTS) or DEFAULT_RESULTS
    pair = data.pair()
    signed_in = auth.allow_pair(pair)
    query = data.parsed("q", parse_query)
    page = services().search.search(
        pair, query, before_id=before_id, limit=limit, require_accounts=signed_in
    )
    return replies.search(page)
