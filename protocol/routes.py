"""Every route of the API: its request model, its reply model and the errors it can answer.

This table is what docs/openapi.yaml is generated from (``python -m protocol.openapi``);
tests/test_openapi.py checks that the app serves exactly these routes, with these
auth decisions, and that its replies fit these models.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from protocol import models as m

Auth = Literal["bearer", "public", "door"]

# The statuses each kind of route can answer besides its success (docs/api.md, "Errors").
ANY = (400, 405, 408, 413, 415, 429, 500)
"""Any route: bad input or body, wrong method, too slow, too large, not form or JSON,
rate limited, a server failure."""
SIGNED_IN = (401,)
CONVERSATION = (401, 403, 404, 503)
"""Not your conversation or blocked; unknown user or message; storage unavailable."""


@dataclass(frozen=True)
class Route:
    method: Literal["get", "post"]
    path: str
    summary: str
    reply: type[m.Model]
    reply_description: str
    request: type[m.Model] | None = None
    status: int = 200
    errors: tuple[int, ...] = ()
    auth: Auth = "bearer"
    request_required: bool = True
    """Whether a body must be sent (on a GET the request's fields are query parameters)."""
    path_parameters: tuple[str, ...] = ()
    media_type: str = "application/json"
    """The success reply's type; ``text/event-stream``: its events' data are ``reply``."""
    header_parameters: tuple[tuple[str, str], ...] = ()
    """Request headers the route reads besides Authorization: (name, description)."""
    request_media_types: tuple[str, ...] = ("application/x-www-form-urlencoded", "application/json")
    """The body types a POST takes."""
    binary_reply: bool = False
    """The success reply is the bytes of a file (of ``media_type``), not ``reply``."""

    @property
    def statuses(self) -> tuple[int, ...]:
        # any token route: a script token without the scope it needs is 403 insufficient_scope
        scoped = (403,) if self.auth == "bearer" else ()
        return tuple(sorted({*ANY, *self.errors, *scoped}))


ROUTES: tuple[Route, ...] = (
    # the seed contract
    Route(
        "post",
        "/create_conversation_db",
        "Create the pair's file and table if absent (idempotent)",
        m.Success,
        "done",
        m.Pair,
        errors=CONVERSATION,
    ),
    Route(
        "post",
        "/get_message_history",
        "A page of the pair's messages, oldest first; optionally long-poll with wait",
        m.History,
        "messages",
        m.HistoryRequest,
        errors=CONVERSATION,
    ),
    Route(
        "post",
        "/send_message/{username}",
        "Send a message to username (the recipient)",
        m.Sent,
        "stored (or already stored under this client_id)",
        m.SendRequest,
        errors=(*CONVERSATION, 409),
        path_parameters=("username",),
    ),
    # files
    Route(
        "post",
        "/send_file/{username}",
        "Send a file (with an optional caption) to username, as a message",
        m.Sent,
        "stored (or already stored under this client_id), with its attachment",
        m.SendFileRequest,
        errors=(*CONVERSATION, 409),
        path_parameters=("username",),
        request_media_types=("multipart/form-data",),
    ),
    Route(
        "get",
        "/file/{message_id}",
        "The bytes of a message's file, streamed, as a download (Range: bytes=first-last, "
        "first- or -suffix gets 206 with those bytes and Content-Range)",
        m.Success,
        "the file, with its Content-Type, Content-Length and Content-Disposition",
        m.FileRequest,
        errors=CONVERSATION,
        path_parameters=("message_id",),
        media_type="application/octet-stream",
        binary_reply=True,
    ),
    Route(
        "get",
        "/files",
        "The pair's files, newest first",
        m.Files,
        "the files",
        m.FileRequest,
        errors=CONVERSATION,
    ),
    # conversation features
    Route(
        "post",
        "/edit_message",
        "Replace the text of one of my messages (author only; a deleted one stays deleted)",
        m.Changed,
        "the message as it is now",
        m.EditRequest,
        errors=(*CONVERSATION, 409),
    ),
    Route(
        "post",
        "/delete_message",
        "Delete one of my messages (author only; it keeps its id; idempotent)",
        m.Changed,
        "the message as deleted",
        m.MessageRef,
        errors=CONVERSATION,
    ),
    Route(
        "post",
        "/react",
        "Set, change or remove my one reaction to a message of the pair (moves its rev)",
        m.Changed,
        "the message as it is now, with its reactions",
        m.ReactRequest,
        errors=(*CONVERSATION, 409),
    ),
    Route(
        "post",
        "/search_messages",
        "Search the pair's whole history (FTS5 in its file), newest first",
        m.SearchResults,
        "matches",
        m.SearchRequest,
        errors=CONVERSATION,
    ),
    # accounts
    Route(
        "post",
        "/register",
        "Create an account and get a token",
        m.Account,
        "registered",
        m.Registration,
        status=201,
        errors=(403, 409, 503),
        auth="public",
    ),
    Route(
        "post",
        "/login",
        "Get a token (failed attempts are rate limited)",
        m.Account,
        "signed in",
        m.Credentials,
        errors=(401,),
        auth="public",
    ),
    Route(
        "post",
        "/logout",
        "Revoke the token this request carries",
        m.Success,
        "done",
        errors=SIGNED_IN,
    ),
    Route(
        "post",
        "/logout_all",
        "Sign out everywhere (revoke every token of this user, this one included)",
        m.Revoked,
        "signed out everywhere",
        errors=SIGNED_IN,
    ),
    Route(
        "post",
        "/change_password",
        "Change the password; every other token of this user is revoked",
        m.Revoked,
        "changed; this token stays valid",
        m.PasswordChange,
        errors=(401, 403),
    ),
    Route(
        "post",
        "/delete_account",
        "Delete this account (peers keep their copy of each conversation, read-only)",
        m.Success,
        "done",
        m.PasswordConfirmation,
        errors=(401, 403, 409),
    ),
    Route("get", "/me", "Who this token is", m.Account, "the account", errors=SIGNED_IN),
    # friends and the change feed
    Route(
        "post",
        "/add_friend",
        "Add someone to my friend list",
        m.Success,
        "done",
        m.Other,
        errors=(401, 404),
    ),
    Route(
        "post",
        "/remove_friend",
        "Remove someone from my list (until they write again)",
        m.Success,
        "done",
        m.Other,
        errors=(401, 404),
    ),
    Route(
        "post",
        "/block_friend",
        "Refuse someone's messages and hide them from my list",
        m.Success,
        "done",
        m.Other,
        errors=(401, 404),
    ),
    Route(
        "post",
        "/unblock_friend",
        "Accept someone's messages again",
        m.Success,
        "done",
        m.Other,
        errors=(401, 404),
    ),
    Route(
        "get",
        "/friends",
        "My friend list with unread counts and last messages, most recent first",
        m.Friends,
        "friends",
        errors=SIGNED_IN,
    ),
    Route(
        "post",
        "/mark_read",
        "Move my read marker in a conversation (forward only)",
        m.Unread,
        "the unread count left",
        m.MarkRead,
        errors=(401, 404),
    ),
    Route(
        "get",
        "/updates",
        "My conversations that changed since a cursor; optionally long-poll with wait",
        m.Feed,
        "changes and the next cursor",
        m.UpdatesQuery,
        errors=SIGNED_IN,
        request_required=False,
    ),
    Route(
        "get",
        "/events",
        "My feed as a stream of Server-Sent Events: a first feed event at once, then one "
        "per change (id: its cursor), a comment every ~25 s, an end event when the server "
        "ends it",
        m.Feed,
        "text/event-stream; each feed event's data is a /updates reply (StreamEnd for the "
        "end event)",
        m.EventsQuery,
        errors=(401, 503),
        request_required=False,
        media_type="text/event-stream",
        header_parameters=(
            (
                "Last-Event-ID",
                "resume after this cursor (the id of the last event received); wins over since",
            ),
        ),
    ),
    # presence and privacy
    Route(
        "post",
        "/typing",
        "I am composing a message to username (shown to them as typing for ~5 s; never stored)",
        m.Success,
        "done",
        m.Other,
        errors=(401, 404),
    ),
    Route(
        "post",
        "/settings",
        "Change my privacy settings (any subset); an empty body reads them",
        m.Settings,
        "every setting as it is now",
        m.SettingsChange,
        errors=SIGNED_IN,
        request_required=False,
    ),
    # the SSH door's identity and an account's keys
    Route(
        "post",
        "/door/session",
        "Who an SSH key is (the SSH door's route; its secret, no token)",
        m.DoorSession,
        "a known key's account and a fresh token, or a ticket",
        m.PublicKey,
        errors=(401, 403),
        auth="door",
    ),
    Route(
        "post",
        "/door/claim",
        "Create a passwordless account for the SSH key behind a door ticket",
        m.Account,
        "the account and its first token",
        m.Claim,
        status=201,
        errors=(403, 409, 503),
        auth="public",
    ),
    Route(
        "post",
        "/door/link",
        "Add the SSH key behind a door ticket to the account that made the code",
        m.Account,
        "the account and a token for this key",
        m.Link,
        errors=(409,),
        auth="public",
    ),
    Route(
        "post",
        "/keys/link_code",
        "A one-time code (10 minutes) that lets another SSH key join this account",
        m.LinkCode,
        "the code",
        errors=SIGNED_IN,
    ),
    Route(
        "get",
        "/keys",
        "The SSH keys that sign in as this account",
        m.Keys,
        "keys",
        errors=SIGNED_IN,
    ),
    Route(
        "post",
        "/keys/remove",
        "Remove one of this account's SSH keys (its tokens are revoked)",
        m.Success,
        "done",
        m.Fingerprint,
        errors=(401, 404, 409),
    ),
    # tokens for scripts (a full session token only)
    Route(
        "post",
        "/tokens",
        "Make a script token with scopes read and/or send, optionally expiring; its secret "
        "is shown once",
        m.NewToken,
        "the token, shown this once",
        m.TokenRequest,
        status=201,
        errors=(401, 409, 503),
    ),
    Route(
        "get",
        "/tokens",
        "My script tokens (never their secrets)",
        m.Tokens,
        "tokens",
        errors=SIGNED_IN,
    ),
    Route(
        "post",
        "/tokens/revoke",
        "Revoke one of my script tokens (its open event streams end)",
        m.Success,
        "done",
        m.TokenRef,
        errors=(401, 404),
    ),
    Route("get", "/healthz", "Liveness", m.Health, "serving", auth="public"),
)
