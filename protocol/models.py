"""Every reply of the API, and the fields of the requests, as typed models.

docs/api.md says what each field means; docs/openapi.yaml is generated from these
classes (``python -m protocol.openapi``). The field order is the order on the wire.

A field typed ``X | UnsetType = UNSET`` may be absent (it is left out of the reply,
never sent as ``null``); every other field of a reply is always sent. A default on
one of those only lets a client read an older server that did not send it yet.
"""

from __future__ import annotations

from typing import Annotated, Literal

from msgspec import UNSET, Meta, Struct, UnsetType

# -- values ---------------------------------------------------------------------------
Username = Annotated[
    str,
    Meta(
        pattern="^[A-Za-z0-9]+(-[A-Za-z0-9]+)*$",
        min_length=1,
        max_length=39,
        description="1-39 ASCII letters, digits and single inner hyphens; case-insensitive",
    ),
]
DateSent = Annotated[
    int | float | str | None,
    Meta(description="Unix seconds set by the server (files of the original server may hold text)"),
]
Count = Annotated[int, Meta(ge=0)]
MessageId = Annotated[int, Meta(ge=1)]
Text = Annotated[str, Meta(min_length=1, max_length=4000)]


class Model(Struct, frozen=True, forbid_unknown_fields=False):
    """Base of every model: immutable; unknown keys are ignored when read."""


# -- replies --------------------------------------------------------------------------
class Error(Model, frozen=True, kw_only=True):
    """Every error reply (docs/api.md, "Errors"); its status and code come from one table."""

    success: Literal[False] = False
    error: Annotated[str, Meta(description="a stable code, e.g. invalid_username")]
    message: Annotated[str, Meta(description="what went wrong, for a human")]


class Success(Model, frozen=True):
    """Done."""

    success: Literal[True] = True


class Health(Model, frozen=True):
    success: Literal[True] = True
    status: str = "ok"


class Account(Model, frozen=True, kw_only=True):
    """``/me``; ``/register``, ``/login``, ``/door/claim`` and ``/door/link`` add a token."""

    success: Literal[True] = True
    username: str
    display_name: str | None
    token: str | UnsetType = UNSET


class Revoked(Model, frozen=True, kw_only=True):
    success: Literal[True] = True
    revoked: Annotated[int, Meta(ge=0, description="how many tokens were revoked")]


class Unread(Model, frozen=True, kw_only=True):
    success: Literal[True] = True
    unread: Annotated[int, Meta(ge=0, description="the unread count left")]


class LinkCode(Model, frozen=True, kw_only=True):
    success: Literal[True] = True
    code: Annotated[str, Meta(pattern="^[0-9A-Z]{4}-[0-9A-Z]{4}$")]
    expires_in: Annotated[int, Meta(description="seconds")]


class DoorSession(Model, frozen=True):
    """A known key's account and a fresh token, or an unknown key's ticket."""

    known: bool
    username: str | UnsetType = UNSET
    display_name: str | UnsetType | None = UNSET
    token: (
        Annotated[
            str, Meta(description="known keys: a fresh token, revoked when the key is removed")
        ]
        | UnsetType
    ) = UNSET
    ticket: (
        Annotated[str, Meta(description="unknown keys: one-time, 10 minutes, bound to the key")]
        | UnsetType
    ) = UNSET


class SshKey(Model, frozen=True):
    fingerprint: Annotated[str, Meta(pattern="^SHA256:[A-Za-z0-9+/]{43}$")]
    type: str
    comment: str
    added: Annotated[int, Meta(description="Unix seconds")]


class Keys(Model, frozen=True):
    keys: list[SshKey]


Scope = Literal["read", "send"]


class NewToken(Model, frozen=True, kw_only=True):
    """``POST /tokens``: a script token, its secret shown this once."""

    success: Literal[True] = True
    token: Annotated[
        str, Meta(description="the bearer token: shown only here, never again (keep it)")
    ]
    id: Annotated[str, Meta(description="its public id: GET /tokens lists it, revoke takes it")]
    name: str
    scopes: Annotated[list[Scope], Meta(description="what it may do, in the order read, send")]
    expires_at: Annotated[
        int | None, Meta(description="Unix seconds when it stops working; null: never")
    ]


class ScriptToken(Model, frozen=True, kw_only=True):
    """A row of ``GET /tokens`` (never the secret)."""

    id: str
    name: str
    scopes: list[Scope]
    created_at: Annotated[int, Meta(description="Unix seconds")]
    last_used: Annotated[int, Meta(description="Unix seconds, to within an hour")]
    expires_at: Annotated[int | None, Meta(description="Unix seconds; null: never")]


class Tokens(Model, frozen=True):
    """This account's script tokens, oldest first (session tokens are not listed)."""

    tokens: list[ScriptToken]


class Attachment(Model, frozen=True):
    """A message's file (its bytes: ``GET /file/<id>``)."""

    name: Annotated[
        str,
        Meta(
            min_length=1,
            description="the file's base name as sent (no folders or control characters; "
            "at most 255 bytes of UTF-8)",
        ),
    ]
    size: Annotated[int, Meta(ge=0, description="bytes")]
    type: Annotated[str, Meta(description="the media type it is served with, e.g. image/png")]


class Message(Model, frozen=True):
    """A message object: the seed's keys, ``id``, and the conversation features' keys."""

    id: int
    author: str
    message: Annotated[str, Meta(description='"" once deleted')]
    date_sent: DateSent
    rev: Annotated[
        int,
        Meta(
            ge=0,
            description="the pair's revision when this message last changed "
            "(new, edited or deleted)",
        ),
    ] = 0
    edited_at: Annotated[int | float | None, Meta(description="Unix seconds of its last edit")] = (
        None
    )
    deleted: Annotated[
        bool, Meta(description='deleted by its author: it keeps its id, its text is ""')
    ] = False
    reply_to: Annotated[
        int | None, Meta(description="the id of the message (same pair) it answers")
    ] = None
    client_id: (
        Annotated[str, Meta(description="the sender's idempotency key, when one was given")]
        | UnsetType
    ) = UNSET
    reactions: Annotated[
        dict[str, list[str]],
        Meta(
            description="each emoji and who reacted with it (usernames, sorted); "
            "one reaction per person; {} when none"
        ),
    ] = {}
    attachment: Annotated[
        Attachment | None,
        Meta(description="the file sent with it (POST /send_file); null: none, or deleted"),
    ] = None


class History(Model, frozen=True):
    """A page of the pair's messages, oldest first."""

    history: list[Message]
    has_more: Annotated[
        bool, Meta(description="more messages exist beyond the page, in the direction asked")
    ] = False
    rev: Annotated[int, Meta(ge=0, description="the pair's revision this page is current to")] = 0
    has_more_after: (
        Annotated[bool, Meta(description="with around_id: newer messages exist after the page")]
        | UnsetType
    ) = UNSET


class Sent(Model, frozen=True, kw_only=True):
    """Stored (or already stored under this client_id)."""

    success: Literal[True] = True
    id: int
    date_sent: DateSent
    duplicate: bool = False
    rev: Annotated[int, Meta(description="the message's revision")] = 0
    attachment: (
        Annotated[Attachment, Meta(description="POST /send_file: the file as stored")] | UnsetType
    ) = UNSET


class FileItem(Model, frozen=True):
    """One file of a pair: its message's id, author and date, and the file."""

    id: Annotated[int, Meta(description="the message's id (GET /file/<id>)")]
    author: str
    date_sent: DateSent
    name: str
    size: Annotated[int, Meta(ge=0, description="bytes")]
    type: str


class Files(Model, frozen=True):
    """``GET /files``: the pair's files, newest first (deleted ones are gone)."""

    files: list[FileItem]


class Changed(Model, frozen=True, kw_only=True):
    """An edit's or a deletion's reply: the message as it is now."""

    success: Literal[True] = True
    message: Message


class SearchResults(Model, frozen=True):
    """Matches, newest first."""

    results: list[Message]
    has_more: Annotated[
        bool, Meta(description="older matches exist (pass the last id as before_id)")
    ] = False


PeerReadUpTo = (
    Annotated[
        int,
        Meta(
            ge=0,
            description="the highest id of mine they have read; absent when either side "
            "turned read receipts off",
        ),
    ]
    | UnsetType
)
"""A friend's and a change's ``peer_read_up_to``: the read receipt, when both allow it."""
ReadUpTo = Annotated[
    int,
    Meta(
        ge=0,
        description="my own read marker in this pair: the highest id I have marked read "
        "(POST /mark_read), 0 when none; shown whatever the read-receipt settings",
    ),
]
"""A friend's and a change's ``read_up_to``: my own marker, so a second device knows it."""


class Friend(Model, frozen=True):
    """A row of ``GET /friends``."""

    username: str
    display_name: str | None = None
    unread: Count = 0
    last_message: Annotated[
        Message | None,
        Meta(
            description="the pair's newest message, as it is now: the whole message object "
            "(its attachment and reactions too)"
        ),
    ] = None
    deleted: Annotated[
        bool,
        Meta(description="this person deleted their account (the conversation stays readable)"),
    ] = False
    rev: Annotated[int, Meta(ge=0, description="the pair's current revision")] = 0
    typing: Annotated[
        bool, Meta(description="they are typing to me (for ~5 s after their POST /typing)")
    ] = False
    request: Annotated[
        bool, Meta(description="a conversation started by someone I have not accepted")
    ] = False
    read_up_to: ReadUpTo = 0
    peer_read_up_to: PeerReadUpTo = UNSET


class Friends(Model, frozen=True):
    """My friend list, most recent activity first; who I blocked; message requests."""

    friends: list[Friend]
    blocked: list[str] = []
    requests: Annotated[
        list[Friend], Meta(description="conversations started by people I have not accepted")
    ] = []


class Change(Model, frozen=True):
    """One entry of the change feed: a conversation that changed since the cursor."""

    username: str
    display_name: str | None = None
    last_id: Count = 0
    unread: Count = 0
    last_activity: DateSent = None
    listed: Annotated[
        bool,
        Meta(
            description="whether this person belongs in the friend list now (false for a request)"
        ),
    ] = True
    blocked: bool = False
    deleted: Annotated[bool, Meta(description="this person deleted their account")] = False
    rev: Annotated[
        int,
        Meta(ge=0, description="the pair's current revision (edits and deletions move it)"),
    ] = 0
    typing: Annotated[bool, Meta(description="they are typing to me")] = False
    request: Annotated[
        bool,
        Meta(description="a message request (a stranger's conversation I have not accepted)"),
    ] = False
    read_up_to: ReadUpTo = 0
    peer_read_up_to: PeerReadUpTo = UNSET


class Feed(Model, frozen=True):
    """Changes and the next cursor."""

    cursor: Annotated[str, Meta(description="opaque: pass the last one back as since")]
    changed: list[Change]


class StreamEnd(Model, frozen=True):
    """The last event of a stream the server ends (``GET /events``)."""

    reason: Annotated[
        Literal["shutdown", "replaced", "unauthorized"],
        Meta(
            description="shutdown: reconnect after the retry time; replaced: the same user "
            "opened more streams and waits than the server holds per user and this was the "
            "oldest (reconnect only much later); unauthorized: the token was revoked"
        ),
    ]
    message: Annotated[str, Meta(description="the reason, for a human")]


class PrivacySettings(Model, frozen=True):
    read_receipts: bool = True
    typing: bool = True


class Settings(Model, frozen=True, kw_only=True):
    """Every setting as it is now."""

    success: Literal[True] = True
    settings: PrivacySettings


# -- requests (form fields or a JSON object; on GET, the query string) ------------------
class Pair(Model, frozen=True):
    user_one: Username
    user_two: Username


class HistoryRequest(Pair, frozen=True):
    after_id: Annotated[int, Meta(ge=0)] | UnsetType = UNSET
    before_id: Annotated[int, Meta(ge=1)] | UnsetType = UNSET
    after_rev: (
        Annotated[
            int,
            Meta(
                ge=0, description="every message changed since this revision (new, edited, deleted)"
            ),
        ]
        | UnsetType
    ) = UNSET
    around_id: (
        Annotated[int, Meta(ge=1, description="the page centred on this message")] | UnsetType
    ) = UNSET
    limit: Annotated[int, Meta(ge=1, le=1000)] | UnsetType = UNSET
    wait: (
        Annotated[
            float,
            Meta(ge=0, description="seconds, with after_id or after_rev; capped by the server"),
        ]
        | UnsetType
    ) = UNSET


class SendRequest(Model, frozen=True):
    author: Username
    message: Text
    client_id: Annotated[str, Meta(pattern="^[A-Za-z0-9_-]{1,64}$")] | UnsetType = UNSET
    reply_to: (
        Annotated[int, Meta(ge=1, description="the id of a message of the same pair")] | UnsetType
    ) = UNSET


class SendFileRequest(Model, frozen=True):
    """``POST /send_file``'s multipart/form-data parts (the file in ``file``)."""

    file: Annotated[
        str,
        Meta(
            description="the file's bytes: a part with a filename (its name and Content-Type "
            "are kept)",
            extra_json_schema={"contentMediaType": "application/octet-stream"},
        ),
    ]
    author: Username
    message: (
        Annotated[str, Meta(max_length=4000, description="an optional caption")] | UnsetType
    ) = UNSET
    client_id: Annotated[str, Meta(pattern="^[A-Za-z0-9_-]{1,64}$")] | UnsetType = UNSET
    reply_to: (
        Annotated[int, Meta(ge=1, description="the id of a message of the same pair")] | UnsetType
    ) = UNSET


class FileRequest(Pair, frozen=True):
    """``GET /file/<id>`` and ``GET /files``: the pair, in the query."""


class MessageRef(Pair, frozen=True):
    id: MessageId


class EditRequest(MessageRef, frozen=True):
    message: Text


class ReactRequest(MessageRef, frozen=True):
    emoji: Annotated[
        str,
        Meta(
            max_length=32,
            description="one emoji (a variation selector, skin tone or ZWJ sequence is one); "
            '"": remove my reaction',
        ),
    ]
    username: (
        Annotated[str, Meta(description="open mode's anonymous client only: who reacts")]
        | UnsetType
    ) = UNSET


class SearchRequest(Pair, frozen=True):
    q: Annotated[
        str,
        Meta(
            min_length=1,
            max_length=256,
            description="plain words; every one must start a word of the message or of "
            "its file's name",
        ),
    ]
    before_id: Annotated[int, Meta(ge=1)] | UnsetType = UNSET
    limit: Annotated[int, Meta(ge=1, le=100)] | UnsetType = UNSET


class Other(Model, frozen=True):
    username: Username


class MarkRead(Model, frozen=True):
    username: Username
    last_read_id: Count


class UpdatesQuery(Model, frozen=True):
    since: Annotated[str, Meta(pattern="^[0-9]{0,18}$")] | UnsetType = UNSET
    wait: Annotated[float, Meta(ge=0)] | UnsetType = UNSET


class EventsQuery(Model, frozen=True):
    since: Annotated[str, Meta(pattern="^[0-9]{0,18}$")] | UnsetType = UNSET


class Credentials(Model, frozen=True):
    username: Username
    password: Annotated[str, Meta(min_length=1, max_length=256)]


class Registration(Model, frozen=True):
    username: Username
    password: Annotated[str, Meta(min_length=8, max_length=256)]
    display_name: (
        Annotated[
            str,
            Meta(
                max_length=64,
                description="refused (409) when it reads like another user's display name "
                "or username",
            ),
        ]
        | UnsetType
        | None
    ) = UNSET
    invite: (
        Annotated[
            str,
            Meta(
                max_length=128,
                description="a code from `pairchat-server invite`; required when the server "
                "runs with --registration invite",
            ),
        ]
        | UnsetType
    ) = UNSET


class PasswordChange(Model, frozen=True):
    password: Annotated[str, Meta(description="the current password")]
    new_password: Annotated[str, Meta(min_length=8, max_length=256)]


class PasswordConfirmation(Model, frozen=True):
    password: Annotated[str, Meta(description="the current password")]


class SettingsChange(Model, frozen=True):
    read_receipts: bool | UnsetType = UNSET
    typing: bool | UnsetType = UNSET


class PublicKey(Model, frozen=True):
    public_key: Annotated[
        str, Meta(max_length=8192, description="OpenSSH one-line form: type base64 [comment]")
    ]


class Claim(Model, frozen=True):
    ticket: Annotated[str, Meta(description="from /door/session")]
    username: Username
    display_name: Annotated[str, Meta(max_length=64)] | UnsetType | None = UNSET
    invite: Annotated[str, Meta(max_length=128)] | UnsetType = UNSET


class Link(Model, frozen=True):
    ticket: Annotated[str, Meta(description="from /door/session")]
    code: Annotated[str, Meta(description="from /keys/link_code: XXXX-XXXX")]


class Fingerprint(Model, frozen=True):
    fingerprint: str


class TokenRequest(Model, frozen=True):
    name: Annotated[
        str, Meta(min_length=1, max_length=64, description="for you to tell them apart")
    ]
    scopes: Annotated[
        str,
        Meta(
            pattern="^ *(read|send) *(, *(read|send) *)*$",
            description="read, send or read,send (comma-separated)",
        ),
    ]
    expires_in: (
        Annotated[
            int,
            Meta(
                ge=1,
                le=316224000,
                description="seconds until it stops working; absent: it never expires",
            ),
        ]
        | UnsetType
    ) = UNSET


class TokenRef(Model, frozen=True):
    id: Annotated[str, Meta(description="a script token's id, from POST /tokens or GET /tokens")]
