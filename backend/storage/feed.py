"""The change feed: the contact rows, the counter that orders them, and what they show.

The change feed is the ``contacts`` table itself: each row is one side of a
conversation (``owner`` sees ``peer``) and carries ``seq``, the value of a global
counter (``feed_counter``) bumped by every change that owner should hear about. A
client's cursor is a counter value; ``GET /updates?since=c`` is one index range scan
over ``(owner, seq)``: it never opens a conversation file. Each pair's newest message
is kept on both of its rows too (``last_author``, ``last_text``, ``last_client_id``
beside ``last_id`` and ``last_activity``; its file as ``last_file_name``,
``last_file_size``, ``last_file_type``, and its reactions as ``last_reactions``, JSON),
so ``GET /friends`` is one range scan of the owner's rows, whatever the number of
contacts, and its ``last_message`` is the whole message object a history page gives.
A row with ``last_id`` > 0 whose ``last_author`` is NULL (from before accounts version
2) or whose ``last_complete`` is 0 (kept before version 8 kept files and reactions)
does not know all of its newest message: the chat service reads it from the pair's
file once and fills it in (``set_last_message``), a bounded number a call; a row its file
cannot better is taken as it is (``keep_last_message``). The pair's file and its feed
rows are written in two steps, so changes can reach the feed out of order: every write
of the newest message compares revisions (``last_id``, then ``last_rev``) and keeps the
later one.

The rows also carry the pair's revision (``rev``: edits and deletions move the feed
of both sides), the flags a friendship is made of (``added``, ``blocked``,
``hidden``, ``accepted``: otherwise a stranger's conversation is a *request*), the
peer's read marker mirrored onto my row (``peer_read``, written by
``backend/storage/markers.py``) and when the peer's typing signal ends
(``typing_until``, ``backend/storage/presence.py``). What an owner may see of these is
decided here, in the queries (``_CONTACT_COLUMNS``, ``_LISTED``): a read marker only
when both sides have receipts on, a typing flag only while it lasts and when both
allow typing.

Every feed write takes the counter first (``next_seq``), in its own transaction:
the counter's row lock orders them on PostgreSQL as SQLite's write lock does. The
other stores that move a feed (``markers``, ``presence``, ``accounts_users``'s
deletion) call ``next_seq`` inside their own transaction for the same reason.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from backend.storage.accounts_db import AccountsTable
from backend.storage.attachments import Attachment
from backend.storage.conversation import Message, Reactions

if TYPE_CHECKING:
    from backend.storage.accounts_db import PgAccountsDb
    from backend.storage.sql import Connection


@dataclass(frozen=True)
class LastMessage:
    """A pair's newest message as the feed keeps it (the wire shape is built at the edge)."""

    id: int
    author: str
    message: str
    date_sent: int
    client_id: str | None
    rev: int = 0
    edited_at: int | None = None
    deleted: bool = False
    reply_to: int | None = None
    attachment: Attachment | None = None  # its file (None: none, or deleted)
    reactions: Reactions | None = None  # None: none

    @classmethod
    def of(cls, message: Message) -> LastMessage:
        date = message.date_sent if isinstance(message.date_sent, int) else 0
        return cls(
            message.id,
            message.author,
            message.message,
            date,
            message.client_id,
            message.rev,
            message.edited_at,
            message.deleted,
            message.reply_to,
            message.attachment,
            message.reactions or None,
        )

    def _params(self) -> dict[str, Any]:
        file = self.attachment
        return {
            "id": self.id,
            "author": self.author,
            "text": self.message,
            "date": self.date_sent,
            "client_id": self.client_id,
            "rev": self.rev,
            "edited_at": self.edited_at,
            "deleted": int(self.deleted),
            "reply_to": self.reply_to,
            "file_name": None if file is None else file.name,
            "file_size": None if file is None else file.size,
            "file_type": None if file is None else file.type,
            "reactions": json.dumps(self.reactions, ensure_ascii=False) if self.reactions else None,
            "complete": 1,  # the message whole: its file and reactions too
        }


class Contact(NamedTuple):
    """One side of a conversation as the feed keeps it (a tuple: 3,000 are built per
    ``GET /friends``, and a frozen dataclass costs five times as much to build)."""

    peer: str
    display_name: str | None
    added: bool
    blocked: bool
    hidden: bool
    last_id: int
    last_activity: int | None
    unread: int
    read_marker: int
    seq: int
    deleted: bool = False  # the peer deleted their account
    rev: int = 0  # the pair's revision
    peer_read_up_to: int | None = None  # None: receipts off on either side
    typing: bool = False  # the peer is typing to the owner (and both allow it)
    request: bool = False  # a stranger's conversation the owner has not accepted


class Listed(NamedTuple):
    """A person in the owner's friend list (``GET /friends``), with the pair's newest message."""

    username: str
    display_name: str | None
    unread: int
    last_message: Message | None
    deleted: bool
    last_id: int  # > 0 with no ``last_message``: a pair from before version 2
    rev: int = 0
    peer_read_up_to: int | None = None
    typing: bool = False
    request: bool = False
    read_up_to: int = 0  # the owner's own read marker (0: nothing marked read)
    last_complete: bool = True  # False: ``last_message`` may lack its file and reactions


# What an owner may see of a peer's read marker and typing (named parameters :now, the
# time in ms, and :receipts / :typing, the owner's own settings): symmetric, as in
# WhatsApp or Signal — who hides theirs sees nobody's.
# Flags are integers compared with 0 (never ``NOT flag``): the same SQL runs on PostgreSQL.
_PEER_READ = "CASE WHEN u.read_receipts <> 0 AND :receipts <> 0 THEN c.peer_read END"
_TYPING = "CASE WHEN c.typing_until > :now AND u.typing <> 0 AND :typing <> 0 THEN 1 ELSE 0 END"
# A stranger's conversation the owner has not accepted (by adding them or writing back).
_REQUEST = "(c.added = 0 AND c.accepted = 0 AND c.last_id > 0 AND c.blocked = 0 AND c.hidden = 0)"

# Who belongs in a friend list or its requests: not blocked, not hidden, added or written
# to (chat.listed); the request flag says which of the two.
_LISTED = (
    "SELECT c.peer, u.display_name, c.unread, c.last_id, c.last_author, c.last_text, "
    "c.last_activity, c.last_client_id, u.deleted_at IS NOT NULL, c.seq, "
    f"c.last_rev, c.last_edited_at, c.last_deleted, c.last_reply_to, c.rev, {_PEER_READ}, "
    f"{_TYPING}, {_REQUEST}, c.read_marker, "
    "c.last_file_name, c.last_file_size, c.last_file_type, c.last_reactions, c.last_complete "
    "FROM contacts c LEFT JOIN users u ON u.username = c.peer "
    "WHERE c.owner = :owner AND c.blocked = 0 AND c.hidden = 0 AND (c.added <> 0 OR c.last_id > 0)"
)  # sorted in Python: SQLite's ORDER BY here (a temporary B-tree) costs more than the scan


def _recent_first(row: tuple[Any, ...]) -> tuple[int, int]:
    return (row[6] or 0, row[9])


_tuple = tuple.__new__  # 3x cheaper than a NamedTuple's generated __new__, same object


def _listed(row: tuple[Any, ...]) -> Listed:
    last = (
        None
        if row[4] is None
        else _tuple(
            Message,
            (
                row[3],
                row[4],
                row[5],
                row[6],
                row[7],
                row[10] or 0,
                row[11],
                bool(row[12]),
                row[13],
                None if row[22] is None else json.loads(row[22]),
                None if row[19] is None else _tuple(Attachment, (row[19], row[20], row[21])),
            ),
        )
    )
    listed: Listed = _tuple(
        Listed,
        (
            row[0],
            row[1],
            row[2],
            last,
            bool(row[8]),
            row[3],
            row[14],
            row[15],
            bool(row[16]),
            bool(row[17]),
            row[18],
            bool(row[23]),
        ),
    )
    return listed


def _greater(a: str, b: str) -> str:
    """The larger of two non-null values (SQLite's ``max(a, b)``, PostgreSQL's ``GREATEST``)."""
    return f"CASE WHEN {b} > {a} THEN {b} ELSE {a} END"


# Whether a write's message is newer than the one a row keeps: a later message, or the
# same one at a later revision. The pair's file and the feed are written in two steps, so
# two changes of a pair can reach the feed in the opposite order; comparing revisions
# keeps the later one whichever lands last (a send's write landing after a reaction to it
# keeps the reaction; of two reactions, the later).
_UPSERT_IS_NEWER = (
    "(excluded.last_id > contacts.last_id OR (excluded.last_id = contacts.last_id "
    "AND excluded.last_rev >= coalesce(contacts.last_rev, 0)))"
)
_REVISION_IS_NEWER = "(:id > last_id OR (:id = last_id AND coalesce(last_rev, 0) < :rev))"

# An upsert's SET clauses for the newest message: taken only from a newer message (all
# expressions see the row as it was, so this must come before last_id's own update). The
# row's own columns are named ``contacts.x`` in an upsert: PostgreSQL finds ``x`` ambiguous.
_NEWEST_TEXT = ", ".join(
    f"{column} = CASE WHEN {_UPSERT_IS_NEWER} THEN excluded.{column} ELSE contacts.{column} END"
    for column in (
        "last_author",
        "last_client_id",
        "last_text",
        "last_rev",
        "last_edited_at",
        "last_deleted",
        "last_reply_to",
        "last_file_name",
        "last_file_size",
        "last_file_type",
        "last_reactions",
        "last_complete",
    )
)
# A message newer than a row's moves its ``last_id`` (and its activity, when it has a
# date): it must come after the clauses that compare with the row's ``last_id``.
_LAST_ID_FORWARD = (
    "last_activity = CASE WHEN :id > last_id AND :date > 0 THEN :date ELSE last_activity END, "
    f"last_id = {_greater('last_id', ':id')}"
)
_REVISION_IS_NEWER_OR_SAME = "(:id > last_id OR (:id = last_id AND coalesce(last_rev, 0) <= :rev))"
_LAST_COLUMNS = (
    "last_author, last_client_id, last_text, last_rev, last_edited_at, last_deleted, "
    "last_reply_to, last_file_name, last_file_size, last_file_type, last_reactions, "
    "last_complete"
)
_LAST_VALUES = (
    ":author, :client_id, :text, :rev, :edited_at, :deleted, :reply_to, "
    ":file_name, :file_size, :file_type, :reactions, :complete"
)

# Both sides of a stored message enter the feed at revision ``{seq}`` (an expression:
# ``:seq`` on SQLite, the counter's update itself on PostgreSQL).
_RECORD_MESSAGE = (
    "INSERT INTO contacts (owner, peer, last_id, last_activity, unread, seq, rev, "
    f"accepted, {_LAST_COLUMNS}) "
    f"VALUES (:author, :recipient, :id, :date, 0, {{seq}}, :rev, 1, {_LAST_VALUES}), "
    f"(:recipient, :author, :id, :date, 1, {{seq}}, :rev, 0, {_LAST_VALUES}) "
    "ON CONFLICT (owner, peer) DO UPDATE SET "
    f"{_NEWEST_TEXT}, "
    f"last_id = {_greater('contacts.last_id', 'excluded.last_id')}, "
    "last_activity = excluded.last_activity, "
    f"rev = {_greater('contacts.rev', 'excluded.rev')}, "
    f"accepted = {_greater('contacts.accepted', 'excluded.accepted')}, "
    "typing_until = CASE WHEN contacts.owner = :recipient THEN NULL "
    "ELSE contacts.typing_until END, "
    "unread = contacts.unread + excluded.unread, hidden = 0, seq = excluded.seq"
)

_CONTACT_COLUMNS = (
    "c.peer, u.display_name, c.added, c.blocked, c.hidden, c.last_id, c.last_activity, "
    f"c.unread, c.read_marker, c.seq, u.deleted_at IS NOT NULL, c.rev, {_PEER_READ}, "
    f"{_TYPING}, {_REQUEST}"
)
_CONTACT_SELECT = (
    f"SELECT {_CONTACT_COLUMNS} FROM contacts c LEFT JOIN users u ON u.username = c.peer "
)
_NOBODY_SEES = {"now": 0, "receipts": 0, "typing": 0}  # a row read for its flags only


def _contact(row: tuple[Any, ...]) -> Contact:
    return Contact(
        row[0],
        row[1],
        bool(row[2]),
        bool(row[3]),
        bool(row[4]),
        row[5],
        row[6],
        row[7],
        row[8],
        row[9],
        bool(row[10]),
        row[11],
        row[12],
        bool(row[13]),
        bool(row[14]),
    )


def next_seq(conn: Connection) -> int:
    """The feed counter, bumped: the ``seq`` of a feed write (inside its transaction)."""
    row = conn.execute(
        "UPDATE feed_counter SET seq = seq + 1 WHERE id = 1 RETURNING seq"
    ).fetchone()
    return int(row[0])


def _seen_by(conn: Connection, owner: str, now_ms: int) -> dict[str, Any]:
    """The query parameters that decide what ``owner`` sees (see ``_PEER_READ``)."""
    row = conn.execute(
        "SELECT read_receipts, typing FROM users WHERE username = ?", (owner,)
    ).fetchone()
    receipts, typing = (1, 1) if row is None else row
    return {"owner": owner, "now": now_ms, "receipts": receipts, "typing": typing}


class FeedStore(AccountsTable):
    """The contact rows: friendships and requests, each pair's newest message, the feed."""

    def current_seq(self) -> int:
        return self._read(
            lambda conn: int(
                conn.execute("SELECT seq FROM feed_counter WHERE id = 1").fetchone()[0]
            )
        )

    def set_flags(self, owner: str, peer: str, **flags: int) -> None:
        """Set ``added``/``blocked``/``hidden``/``accepted`` on owner's side and announce it
        in owner's feed."""
        names = sorted(flags)
        assert set(names) <= {"added", "blocked", "hidden", "accepted"}

        def work(conn: Connection) -> None:
            seq = next_seq(conn)
            conn.execute(
                "INSERT INTO contacts (owner, peer, seq) VALUES (?, ?, ?) "
                "ON CONFLICT (owner, peer) DO UPDATE SET seq = excluded.seq",
                (owner, peer, seq),
            )
            assignments = ", ".join(f"{name} = ?" for name in names)
            conn.execute(
                f"UPDATE contacts SET {assignments} WHERE owner = ? AND peer = ?",
                (*(flags[name] for name in names), owner, peer),
            )

        self._write(work)

    def contact(self, owner: str, peer: str) -> Contact | None:
        """Owner's row for peer, read for its flags (no read marker or typing shown)."""
        row = self._read(
            lambda conn: conn.execute(
                _CONTACT_SELECT + "WHERE c.owner = :owner AND c.peer = :peer",
                {"owner": owner, "peer": peer, **_NOBODY_SEES},
            ).fetchone()
        )
        return None if row is None else _contact(row)

    def record_message(self, author: str, recipient: str, last: LastMessage) -> None:
        """Both sides of a stored message enter the feed; the recipient's unread grows.

        Writing accepts the conversation on the author's side; the author's typing
        signal to the recipient ends.
        """

        def work(conn: Connection) -> None:
            seq = next_seq(conn)
            conn.execute(
                _RECORD_MESSAGE.format(seq=":seq"),
                {**last._params(), "recipient": recipient, "seq": seq},
            )

        self._write(work)

    def repair_feed(self, author: str, recipient: str, last: LastMessage, unread: int) -> None:
        """Like ``record_message`` with the recipient's unread count given, not added."""

        def work(conn: Connection) -> None:
            seq = next_seq(conn)
            conn.execute(
                "INSERT INTO contacts (owner, peer, last_id, last_activity, unread, seq, rev, "
                f"accepted, {_LAST_COLUMNS}) "
                f"VALUES (:author, :recipient, :id, :date, 0, :seq, :rev, 1, {_LAST_VALUES}), "
                f"(:recipient, :author, :id, :date, :unread, :seq, :rev, 0, {_LAST_VALUES}) "
                "ON CONFLICT (owner, peer) DO UPDATE SET "
                "last_activity = CASE WHEN excluded.last_id > contacts.last_id "
                "THEN excluded.last_activity ELSE contacts.last_activity END, "
                f"{_NEWEST_TEXT}, "
                f"last_id = {_greater('contacts.last_id', 'excluded.last_id')}, "
                f"rev = {_greater('contacts.rev', 'excluded.rev')}, "
                f"accepted = {_greater('contacts.accepted', 'excluded.accepted')}, "
                "unread = CASE WHEN contacts.owner = :recipient THEN excluded.unread "
                "ELSE contacts.unread END, "
                "hidden = 0, seq = excluded.seq",
                {**last._params(), "recipient": recipient, "unread": unread, "seq": seq},
            )

        self._write(work)

    def record_revision(
        self, author: str, peer: str, changed: LastMessage, peer_unread: int | None = None
    ) -> None:
        """An edit, deletion or reaction: both sides' feeds move to the pair's new revision.

        Where ``changed`` is the pair's newest message at a later revision than the one
        kept on the rows, it replaces it (an older change landing late is dropped); a
        message newer than the rows' (its send's feed write has not landed yet) is taken
        whole. ``peer_unread`` (after a deletion) is the peer's unread count recounted.
        """

        def work(conn: Connection) -> None:
            seq = next_seq(conn)
            newest = ", ".join(
                f"{column} = CASE WHEN {_REVISION_IS_NEWER} THEN :{value} ELSE {column} END"
                for column, value in (
                    ("last_author", "author"),  # a message the feed has not heard of yet
                    ("last_client_id", "client_id"),
                    ("last_reply_to", "reply_to"),
                    ("last_text", "text"),
                    ("last_rev", "rev"),
                    ("last_edited_at", "edited_at"),
                    ("last_deleted", "deleted"),
                    ("last_file_name", "file_name"),  # a deletion's file goes
                    ("last_file_size", "file_size"),
                    ("last_file_type", "file_type"),
                    ("last_reactions", "reactions"),  # a reaction moves the revision too
                    ("last_complete", "complete"),
                )
            )
            conn.execute(
                f"UPDATE contacts SET {newest}, {_LAST_ID_FORWARD}, "
                f"rev = {_greater('rev', ':rev')}, seq = :seq, "
                "unread = CASE WHEN owner = :peer AND CAST(:unread AS INTEGER) IS NOT NULL "
                "THEN CAST(:unread AS INTEGER) ELSE unread END "
                "WHERE (owner = :author AND peer = :peer) OR (owner = :peer AND peer = :author)",
                {
                    **changed._params(),
                    "author": author,
                    "peer": peer,
                    "seq": seq,
                    "unread": peer_unread,
                },
            )

        self._write(work)

    def set_last_message(self, a: str, b: str, last: LastMessage) -> None:
        """Fill in a pair's newest message, as read from its file, on its rows (incomplete:
        from before accounts version 2, or from before version 8 kept files and
        reactions): taken where it is not older than the row's (the same revision, or a
        later message: the feed missed a send), then the row is complete — a row newer
        than ``last`` (a change that landed since the file was read, or a file behind
        its feed) stays as it is."""
        taken = ", ".join(
            f"{column} = CASE WHEN {_REVISION_IS_NEWER_OR_SAME} THEN :{value} ELSE {column} END"
            for column, value in zip(
                _LAST_COLUMNS.split(", "), _LAST_VALUES.replace(":", "").split(", "), strict=True
            )
            if column != "last_complete"
        )
        self._write(
            lambda conn: conn.execute(
                f"UPDATE contacts SET {taken}, {_LAST_ID_FORWARD}, last_complete = 1 "
                "WHERE (owner = :a AND peer = :b) OR (owner = :b AND peer = :a)",
                {**last._params(), "a": a, "b": b},
            )
        )

    def keep_last_message(self, a: str, b: str, last_id: int) -> None:
        """A pair's rows that reading its file cannot make better (no file, none readable
        here, or one behind the feed) are taken as they are: marked complete, so
        ``GET /friends`` stops reading it; the pair's next change writes it whole."""
        self._write(
            lambda conn: conn.execute(
                "UPDATE contacts SET last_complete = 1 WHERE last_complete = 0 AND last_id = :id "
                "AND ((owner = :a AND peer = :b) OR (owner = :b AND peer = :a))",
                {"id": last_id, "a": a, "b": b},
            )
        )

    def forget_pair(self, a: str, b: str) -> None:
        """A pair's conversation was erased: both sides' counters and last message go too."""

        def work(conn: Connection) -> None:
            seq = next_seq(conn)
            conn.execute(
                "UPDATE contacts SET last_id = 0, last_activity = NULL, unread = 0, "
                "read_marker = 0, last_author = NULL, last_client_id = NULL, last_text = NULL, "
                "last_file_name = NULL, last_file_size = NULL, last_file_type = NULL, "
                "last_reactions = NULL, last_complete = 0, seq = :seq "
                "WHERE (owner = :a AND peer = :b) OR (owner = :b AND peer = :a)",
                {"a": a, "b": b, "seq": seq},
            )

        self._write(work)

    def contacts(self, owner: str, since: int = 0, now_ms: int = 0) -> tuple[int, list[Contact]]:
        """The feed: (current counter, owner's contacts changed after ``since``), one snapshot.

        ``now_ms``: typing signals that end before it are not shown.
        """

        def work(conn: Connection) -> tuple[int, list[Contact]]:
            seq = int(conn.execute("SELECT seq FROM feed_counter WHERE id = 1").fetchone()[0])
            rows = conn.execute(
                _CONTACT_SELECT + "WHERE c.owner = :owner AND c.seq > :since ORDER BY c.seq",
                {**_seen_by(conn, owner, now_ms), "since": since},
            ).fetchall()
            return seq, [_contact(row) for row in rows]

        return self._snapshot(work)

    def friend_list(self, owner: str, now_ms: int = 0) -> tuple[list[Listed], list[str]]:
        """(listed and requests, most recent activity first; blocked names): two index
        range scans."""

        def work(conn: Connection) -> tuple[list[Listed], list[str]]:
            rows = conn.execute(_LISTED, _seen_by(conn, owner, now_ms)).fetchall()
            rows.sort(key=_recent_first, reverse=True)
            blocked = conn.execute(
                "SELECT peer FROM contacts WHERE owner = ? AND blocked <> 0 ORDER BY peer",
                (owner,),
            ).fetchall()
            return [_listed(row) for row in rows], [row[0] for row in blocked]

        return self._snapshot(work)

    def changed_pairs(self, since: int) -> tuple[int, list[tuple[str, str]]]:
        """(current counter, (owner, peer) rows changed after ``since``) — to wake waiters."""

        def work(conn: Connection) -> tuple[int, list[tuple[str, str]]]:
            seq = int(conn.execute("SELECT seq FROM feed_counter WHERE id = 1").fetchone()[0])
            rows = conn.execute(
                "SELECT owner, peer FROM contacts WHERE seq > ?", (since,)
            ).fetchall()
            return seq, [(row[0], row[1]) for row in rows]

        return self._read(work)

    def feed_rows(self) -> list[tuple[str, str, int, int]]:
        """Every (owner, peer, last_id, read_marker): to check a backup against its pair files."""
        return self._read(
            lambda conn: conn.execute(
                "SELECT owner, peer, last_id, read_marker FROM contacts"
            ).fetchall()
        )


class PgFeedStore(FeedStore):
    """The feed on PostgreSQL: a send's feed record is one statement."""

    def __init__(self, db: PgAccountsDb) -> None:
        super().__init__(db)
        self._statement = db.statement

    def record_message(self, author: str, recipient: str, last: LastMessage) -> None:
        """One statement, its own transaction: the feed counter's row lock (which orders
        every node's feed writes) is held while PostgreSQL runs it, not across round
        trips to this node — with BEGIN … COMMIT it was held ~5 ms a send under load,
        and every send of the cluster queued on it (docs/performance.md, "(j)")."""
        params = {**last._params(), "recipient": recipient}
        self._statement(lambda conn: conn.execute(_RECORD_MESSAGE_ONE_STATEMENT, params))


_RECORD_MESSAGE_ONE_STATEMENT = (
    "WITH counter AS (UPDATE feed_counter SET seq = seq + 1 WHERE id = 1 RETURNING seq) "
    + _RECORD_MESSAGE.format(seq="(SELECT seq FROM counter)")
)
