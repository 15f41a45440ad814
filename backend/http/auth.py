"""Every route's auth decision, enforced in one ``before_request`` hook.

A view is marked with exactly one of the decorators below; a route without a
decision is refused (fail closed) and a test walks the URL map to catch it.
- ``public``: no token (register, login, health).
- ``user``: a valid bearer token, always (accounts, friends, the feed).
- ``conversation``: a valid token, except in open mode where the seed's
  unauthenticated requests are served as the original server did. The view
  then names the pair (``allow_pair``) or the author (``allow_author``) it acts
  on: a signed-in user may only use their own (docs/design.md, "Auth").
- ``door``: the SSH door's secret in ``X-Pairchat-Door`` (401 without it, 403
  with another), no token (``/door/session``: who an SSH key is).

A script token (``POST /tokens``) carries scopes; ``SCOPES`` says which one each
route needs, and a route not in it (managing the account, its tokens, keys and
settings, friends) needs a full session token: anything else is ``403
insufficient_scope``. A session token may do everything.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from flask import current_app, g, request

from backend.core.errors import Forbidden, InsufficientScope, Unauthenticated
from backend.core.usernames import Pair, Username
from backend.http.context import services

F = TypeVar("F", bound=Callable[..., object])
DECISIONS = ("public", "user", "conversation", "door")
DOOR_HEADER = "X-Pairchat-Door"

SCOPES: dict[str, str] = {
    # read: what is mine to read, and waiting for it
    "friends.friends": "read",
    "friends.updates": "read",
    "events.events": "read",
    "conversations.get_message_history": "read",
    "conversations.search_messages": "read",
    "files.get_file": "read",
    "files.list_files": "read",
    "accounts.me": "read",
    # send: writing in conversations, and what goes with writing
    "conversations.send_message": "send",
    "files.send_file": "send",
    "conversations.edit_message": "send",
    "conversations.delete_message": "send",
    "conversations.react": "send",
    "conversations.create_conversation_db": "send",
    "presence.typing": "send",
    "friends.mark_read": "send",
}
"""Endpoint -> the scope a script token needs for it; any other endpoint that takes a
token needs a full session token."""


def _mark(decision: str) -> Callable[[F], F]:
    def decorate(view: F) -> F:
        view.auth_decision = decision  # type: ignore[attr-defined]
        return view

    return decorate


public = _mark("public")
user = _mark("user")
conversation = _mark("conversation")
door = _mark("door")


def decision_for(endpoint: str | None) -> str | None:
    view = current_app.view_functions.get(endpoint) if endpoint else None
    return getattr(view, "auth_decision", None)


def bearer_token() -> str | None:
    header = request.headers.get("Authorization")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > 512 or not token.isascii():
        raise Unauthenticated("use 'Authorization: Bearer <token>'")
    return token


def authenticate() -> None:
    """``before_request``: set ``g.user`` (a username, or None where allowed)."""
    g.user = None
    if request.url_rule is None:
        return  # 404/405: Werkzeug's error, rendered as JSON
    decision = decision_for(request.endpoint)
    if decision == "public":
        return
    if decision == "door":
        services().ssh_identity.check_secret(request.headers.get(DOOR_HEADER))
        return
    if decision not in DECISIONS:
        raise Unauthenticated("this route has no auth decision")
    token = bearer_token()
    if token is None:
        if decision == "conversation" and services().settings.open_mode:
            return
        raise Unauthenticated("this route needs 'Authorization: Bearer <token>'")
    grant = services().accounts.authenticate_grant(token)
    g.user = grant.username
    if grant.scopes is not None:
        needed = SCOPES.get(request.endpoint or "")
        if needed is None:
            raise InsufficientScope("this route needs a session token, not a script token")
        if needed not in grant.scopes:
            raise InsufficientScope(f"this token lacks the '{needed}' scope")


def current_user() -> Username:
    """The authenticated user of a ``user`` route."""
    name: Username | None = g.get("user")
    if name is None:
        raise Unauthenticated("this route needs 'Authorization: Bearer <token>'")
    return name


def allow_pair(pair: Pair) -> bool:
    """A ``conversation`` route acting on ``pair``: may this request?

    True when signed in as one of the pair (anyone else: ``Forbidden``, and
    nothing about the conversation is read); False for open mode's anonymous
    seed client, which may name any pair.
    """
    viewer: Username | None = g.get("user")
    if viewer is None:
        return False
    if viewer not in pair:
        raise Forbidden("you can only use your own conversations")
    return True


def waiter(pair: Pair) -> str:
    """Whose long-poll this is, for the per-user cap: the signed-in user, or (open mode's
    anonymous seed client, who could be anyone) the pair it waits on."""
    viewer: Username | None = g.get("user")
    return viewer if viewer is not None else f"pair:{pair.file_name}"


def allow_author(author: Username) -> bool:
    """``send_message``: True when signed in as ``author`` (else ``Forbidden``).

    False for open mode's anonymous seed client, which may send as anyone.
    """
    viewer: Username | None = g.get("user")
    if viewer is None:
        return False
    if viewer != author:
        raise Forbidden("you can only send as yourself")
    return True
