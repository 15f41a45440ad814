"""Accounts, token hashes, contacts (friendships, blocks, read markers) and the change feed.

All of it lives in one file, ``_accounts.sqlite3`` in the data folder: a name no
pair can map to (pair files are ``<name>_<name>.db`` and names never start with
``_``). Plain SQL only; hashing and policy live in ``backend.services.accounts``.

The change feed is the ``contacts`` table itself: each row is one side of a
conversation (``owner`` sees ``peer``) and carries ``seq``, the value of a global
counter bumped by every change that owner should hear about. A client's cursor is
a counter value; ``GET /updates?since=c`` is one index range scan over
``(owner, seq)``: it never opens a conversation file. Each pair's newest message
is kept on both of its rows too (``last_author``, ``last_text``,
``last_client_id`` beside ``last_id`` and ``last_activity``), so ``GET /friends``
is one range scan of the owner's rows, whatever the number of contacts.

Version 2 adds token idle times, account deletion (a deleted account keeps its
row as a tombstone, so its name is never handed to someone else, who would then
inherit its conversation files), display-name keys, invites, the newest
message on the contact rows, and ``meta`` (a counter other workers watch to forget cached accounts).

Version 3 adds what the conversation features need, still on the contact rows so
the feed stays one range scan: the pair's revision (``rev``: edits and deletions
move the feed of both sides), the peer's read marker mirrored onto my row
(``peer_read``: read receipts), when the peer's typing signal ends
(``typing_until``, milliseconds; kept here and not in the pair file so every
worker sees it, and ignored once past), whether I accepted the conversation
(``accepted``: I added them or wrote to them; otherwise a stranger's
conversation is a *request*), the newest message's revision, edit, deletion and
reply, and each user's privacy settings (``users.read_receipts``,
``users.typing``). What an owner may see of these is decided in the queries
(``_CONTACT_COLUMNS``, ``_LISTED``): a read marker only when both sides have
receipts on, a typing flag only while it lasts and when both allow typing.

Version 4 adds the SSH door's identities (``backend/storage/door_keys.py``). The
versions themselves are ``backend/storage/accounts_schema.py``.

In multi-node mode the same tables live in PostgreSQL, shared by every node
(``open_account_store(…, database_url=…)``: ``PostgresAccountStore``; its schema
is ``backend/storage/accounts_pg_schema.py``). The statements here are the same
for both engines: SQLite's dialect kept to what PostgreSQL also runs (flags
compared with 0, ``_greater`` for two-argument ``max()``, an upsert's own columns
named ``contacts.x``), parameters rewritten by ``backend/storage/sql.py``; every
feed write takes the counter first, whose row lock orders them on PostgreSQL as
SQLite's write lock does.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

from backend.core.errors import StorageUnavailable, UsernameTaken
from backend.storage.accounts_schema import ACCOUNTS_FILE, MIGRATIONS
from backend.storage.conversation import Message
from backend.storage.database import (
    backup,
    connect,
    immediate,
    migrate,
    snapshot,
    storage_unavailable,
)
from backend.storage.door_keys import DoorKeyStore, insert_user

if TYPE_CHECKING:  # psycopg is imported only in multi-node mode
    from backend.storage.sql import Connection, PgDatabase

__all__ = ["ACCOUNTS_FILE", "MIGRATIONS", "AccountStore", "open_account_store"]
T = TypeVar("T")


@dataclass(frozen=True)
class User:
    username: str
    display_name: str | None
    password_hash: str
    deleted: bool = False


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
        )

    def _params(self) -> dict[str, Any]:
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
        }


@dataclass(frozen=True)
class Privacy:
    """A user's settings (``POST /settings``): both on unless turned off."""

    read_receipts: bool = True
    typing: bool = True


@dataclass(frozen=True)
class Token:
    username: str
    created_at: int
    last_used: int


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
    f"{_TYPING}, {_REQUEST} "
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
        ),
    )
    return listed


def _greater(a: str, b: str) -> str:
    """The larger of two non-null values (SQLite's ``max(a, b)``, PostgreSQL's ``GREATEST``)."""
    return f"CASE WHEN {b} > {a} THEN {b} ELSE {a} END"


# An upsert's SET clauses for the newest message: taken only from a newer message (all
# expressions see the row as it was, so this must come before last_id's own update). The
# row's own columns are named ``contacts.x`` in an upsert: PostgreSQL finds ``x`` ambiguous.
_NEWEST_TEXT = ", ".join(
    f"{column} = CASE WHEN excluded.last_id >= contacts.last_id THEN excluded.{column} "
    f"ELSE contacts.{column} END"
    for column in (
        "last_author",
        "last_client_id",
        "last_text",
        "last_rev",
        "last_edited_at",
        "last_deleted",
        "last_reply_to",
    )
)
_LAST_COLUMNS = (
    "last_author, last_client_id, last_text, last_rev, last_edited_at, last_deleted, last_reply_to"
)
_LAST_VALUES = ":author, :client_id, :text, :rev, :edited_at, :deleted, :reply_to"

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


class AccountStore(DoorKeyStore):
    """One shared connection to the accounts file, serialised by a lock (the SSH door's
    keys, tickets and codes: ``DoorKeyStore``)."""

    def __init__(self, data_dir: Path, *, synchronous: str = "NORMAL") -> None:
        self.path = Path(data_dir) / ACCOUNTS_FILE
        self._lock = threading.Lock()
        self._conn = connect(self.path, create=True, synchronous=synchronous)
        migrate(self._conn, MIGRATIONS)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def _locked(self, work: Callable[[sqlite3.Connection], T]) -> T:
        with self._lock:
            try:
                return work(self._conn)
            except sqlite3.Error as exc:
                raise storage_unavailable(exc) from exc

    # The three ways to run work; ``PostgresAccountStore`` has its own.
    def _read(self, work: Callable[[Connection], T]) -> T:
        return self._locked(work)

    def _write(self, work: Callable[[Connection], T]) -> T:
        def in_transaction(conn: sqlite3.Connection) -> T:
            with immediate(conn):
                return work(conn)

        return self._locked(in_transaction)

    def _snapshot(self, work: Callable[[Connection], T]) -> T:
        """Several reads that see the file at one instant."""

        def in_transaction(conn: sqlite3.Connection) -> T:
            with snapshot(conn):
                return work(conn)

        return self._locked(in_transaction)

    def _serialize_accounts(self, conn: Connection) -> None:
        """Registrations one at a time (names checked, then inserted): SQLite's write
        lock already does it."""

    # -- users ---------------------------------------------------------------------
    def add_user(
        self,
        username: str,
        display_name: str | None,
        password_hash: str,
        now: int,
        *,
        invite_hash: str | None = None,
    ) -> bool:
        """False when the name is taken (deleted accounts keep theirs).

        In the same transaction: a display name that reads like another user's
        name is ``DisplayNameTaken``; with ``invite_hash``, the invite is used up
        (``InvalidInvite`` when it is unknown, used or expired), so two
        registrations can never share one invite.
        """

        def work(conn: Connection) -> bool:
            self._serialize_accounts(conn)
            try:
                insert_user(conn, username, display_name, password_hash, now, invite_hash)
            except UsernameTaken:
                return False
            return True

        return self._write(work)

    def user(self, username: str) -> User | None:
        """The account, deleted or not (a deleted one has ``deleted`` and no password)."""
        row = self._read(
            lambda conn: conn.execute(
                "SELECT username, display_name, password_hash, deleted_at IS NOT NULL "
                "FROM users WHERE username = ?",
                (username,),
            ).fetchone()
        )
        return None if row is None else User(row[0], row[1], row[2], bool(row[3]))

    def set_password_hash(self, username: str, password_hash: str) -> None:
        self._write(
            lambda conn: conn.execute(
                "UPDATE users SET password_hash = ? WHERE username = ?", (password_hash, username)
            )
        )

    def change_password(self, username: str, password_hash: str, keep_token: str | None) -> int:
        """New hash; every token of the user but ``keep_token`` revoked. Returns how many."""

        def work(conn: Connection) -> int:
            conn.execute(
                "UPDATE users SET password_hash = ? WHERE username = ?", (password_hash, username)
            )
            gone = conn.execute(
                "DELETE FROM tokens WHERE username = ? AND token_hash IS DISTINCT FROM ?",
                (username, keep_token),
            )
            return gone.rowcount

        return self._write(work)

    def delete_user(self, username: str, now: int) -> list[str]:
        """Tombstone the account: no password, tokens, name or contacts of its own.

        The peers keep their side (their contact rows and the pair files) and
        hear about it in their feed; the name stays taken for good. Returns the peers.
        """

        def work(conn: Connection) -> list[str]:
            seq = self._next_seq(conn)  # first: every feed write takes the counter first
            conn.execute(
                "UPDATE users SET deleted_at = ?, password_hash = '', display_name = NULL, "
                "display_key = NULL, read_receipts = 1, typing = 1 WHERE username = ?",
                (now, username),
            )
            conn.execute("DELETE FROM tokens WHERE username = ?", (username,))
            conn.execute("DELETE FROM ssh_keys WHERE username = ?", (username,))
            conn.execute("DELETE FROM link_codes WHERE username = ?", (username,))
            conn.execute("DELETE FROM contacts WHERE owner = ?", (username,))
            peers = conn.execute(
                "UPDATE contacts SET seq = ? WHERE peer = ? RETURNING owner", (seq, username)
            ).fetchall()
            conn.execute("UPDATE meta SET value = value + 1 WHERE key = 'account_epoch'")
            return [row[0] for row in peers]

        return self._write(work)

    def account_epoch(self) -> int:
        """Moves when an account is deleted: workers then forget the names they cached."""
        return self._read(
            lambda conn: int(
                conn.execute("SELECT value FROM meta WHERE key = 'account_epoch'").fetchone()[0]
            )
        )

    # -- tokens --------------------------------------------------------------------
    def add_token(
        self, token_hash: str, username: str, now: int, via_key: str | None = None
    ) -> None:
        """A new token; ``via_key``: the SSH key it was issued through (the door)."""
        self._write(
            lambda conn: conn.execute(
                "INSERT INTO tokens (token_hash, username, created_at, last_used, via_key) "
                "VALUES (?, ?, ?, ?, ?)",
                (token_hash, username, now, now, via_key),
            )
        )

    def token(self, token_hash: str) -> Token | None:
        row = self._read(
            lambda conn: conn.execute(
                "SELECT username, created_at, coalesce(last_used, created_at) FROM tokens "
                "WHERE token_hash = ?",
                (token_hash,),
            ).fetchone()
        )
        return None if row is None else Token(row[0], row[1], row[2])

    def touch_token(self, token_hash: str, now: int) -> None:
        self._write(
            lambda conn: conn.execute(
                "UPDATE tokens SET last_used = ? WHERE token_hash = ?", (now, token_hash)
            )
        )

    def delete_token(self, token_hash: str) -> None:
        self._write(
            lambda conn: conn.execute("DELETE FROM tokens WHERE token_hash = ?", (token_hash,))
        )

    def delete_tokens(self, username: str) -> int:
        """Sign out everywhere: every token of the user. Returns how many."""
        return self._write(
            lambda conn: conn.execute("DELETE FROM tokens WHERE username = ?", (username,)).rowcount
        )

    # -- invites -------------------------------------------------------------------
    def add_invite(self, code_hash: str, now: int, expires_at: int | None) -> None:
        self._write(
            lambda conn: conn.execute(
                "INSERT INTO invites (code_hash, created_at, expires_at) VALUES (?, ?, ?)",
                (code_hash, now, expires_at),
            )
        )

    # -- contacts and the feed -------------------------------------------------------
    @staticmethod
    def _next_seq(conn: Connection) -> int:
        row = conn.execute(
            "UPDATE feed_counter SET seq = seq + 1 WHERE id = 1 RETURNING seq"
        ).fetchone()
        return int(row[0])

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
            seq = self._next_seq(conn)
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
            seq = self._next_seq(conn)
            conn.execute(
                _RECORD_MESSAGE.format(seq=":seq"),
                {**last._params(), "recipient": recipient, "seq": seq},
            )

        self._write(work)

    def repair_feed(self, author: str, recipient: str, last: LastMessage, unread: int) -> None:
        """Like ``record_message`` with the recipient's unread count given, not added."""

        def work(conn: Connection) -> None:
            seq = self._next_seq(conn)
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
        """An edit or deletion: both sides' feeds move to the pair's new revision.

        Where ``changed`` is the pair's newest message it replaces the one kept on the
        rows; ``peer_unread`` (after a deletion) is the peer's unread count recounted.
        """

        def work(conn: Connection) -> None:
            seq = self._next_seq(conn)
            newest = ", ".join(
                f"{column} = CASE WHEN last_id = :id THEN :{value} ELSE {column} END"
                for column, value in (
                    ("last_text", "text"),
                    ("last_rev", "rev"),
                    ("last_edited_at", "edited_at"),
                    ("last_deleted", "deleted"),
                )
            )
            conn.execute(
                f"UPDATE contacts SET {newest}, rev = {_greater('rev', ':rev')}, seq = :seq, "
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
        """Fill in a pair's newest message on both its rows (pairs from before version 2)."""
        self._write(
            lambda conn: conn.execute(
                f"UPDATE contacts SET ({_LAST_COLUMNS}) = ({_LAST_VALUES}) WHERE last_id = :id "
                "AND ((owner = :a AND peer = :b) OR (owner = :b AND peer = :a))",
                {**last._params(), "a": a, "b": b},
            )
        )

    def set_read_marker(self, owner: str, peer: str, marker: int, unread: int) -> bool:
        """Owner's marker and unread count; the marker is mirrored onto peer's row.

        Peer's feed hears of it only when the marker moved and both have read
        receipts on. Returns whether it did.
        """

        def work(conn: Connection) -> bool:
            seq = self._next_seq(conn)
            conn.execute(
                "INSERT INTO contacts (owner, peer, read_marker, unread, seq) "
                "VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (owner, peer) DO UPDATE SET read_marker = excluded.read_marker, "
                "unread = excluded.unread, seq = excluded.seq",
                (owner, peer, marker, unread, seq),
            )
            told = conn.execute(
                "UPDATE contacts SET peer_read = :marker, seq = CASE WHEN peer_read <> :marker "
                "AND coalesce((SELECT read_receipts FROM users WHERE username = :owner), 1) <> 0 "
                "AND coalesce((SELECT read_receipts FROM users WHERE username = :peer), 1) <> 0 "
                "THEN :seq ELSE seq END WHERE owner = :peer AND peer = :owner RETURNING seq",
                {"owner": owner, "peer": peer, "marker": marker, "seq": seq},
            ).fetchone()
            return told is not None and told[0] == seq

        return self._write(work)

    def signal_typing(
        self, typer: str, recipient: str, now_ms: int, until_ms: int, gap_ms: int
    ) -> bool:
        """The typer is typing to the recipient until ``until_ms``: True when recorded.

        Only into an accepted conversation (a friend, or one the recipient wrote
        in), not blocked or hidden, when both allow typing, and at most once per
        ``gap_ms``: nothing is written otherwise.
        """

        def work(conn: Connection) -> bool:
            row = conn.execute(
                "SELECT 1 FROM contacts c WHERE c.owner = :recipient AND c.peer = :typer "
                "AND c.blocked = 0 AND c.hidden = 0 AND (c.added <> 0 OR c.accepted <> 0) "
                "AND coalesce(c.typing_until, 0) <= :until - :gap "
                "AND (SELECT typing FROM users WHERE username = :typer) <> 0 "
                "AND (SELECT typing FROM users WHERE username = :recipient) <> 0",
                {"recipient": recipient, "typer": typer, "until": until_ms, "gap": gap_ms},
            ).fetchone()
            if row is None:
                return False
            conn.execute(
                "UPDATE contacts SET typing_until = ?, seq = ? WHERE owner = ? AND peer = ?",
                (until_ms, self._next_seq(conn), recipient, typer),
            )
            return True

        return self._write(work)

    # -- privacy settings ------------------------------------------------------------
    def privacy(self, username: str) -> Privacy:
        row = self._read(
            lambda conn: conn.execute(
                "SELECT read_receipts, typing FROM users WHERE username = ?", (username,)
            ).fetchone()
        )
        return Privacy() if row is None else Privacy(bool(row[0]), bool(row[1]))

    def set_privacy(
        self, username: str, read_receipts: bool | None, typing: bool | None
    ) -> tuple[Privacy, list[str]]:
        """Change some settings; returns them all and whose feeds heard of it.

        Turning receipts on or off changes what both sides of each of the user's
        conversations see, so all those rows (the user's and their peers') move.
        """

        def work(conn: Connection) -> tuple[Privacy, list[str]]:
            row = conn.execute(
                "SELECT read_receipts, typing FROM users WHERE username = ?", (username,)
            ).fetchone()
            before = Privacy() if row is None else Privacy(bool(row[0]), bool(row[1]))
            after = Privacy(
                before.read_receipts if read_receipts is None else read_receipts,
                before.typing if typing is None else typing,
            )
            if after == before:
                return after, []
            conn.execute(
                "UPDATE users SET read_receipts = ?, typing = ? WHERE username = ?",
                (int(after.read_receipts), int(after.typing), username),
            )
            if after.read_receipts == before.read_receipts:
                return after, []
            moved = conn.execute(
                "UPDATE contacts SET seq = ? WHERE owner = ? OR peer = ? RETURNING owner",
                (self._next_seq(conn), username, username),
            ).fetchall()
            return after, sorted({owner for (owner,) in moved})

        return self._write(work)

    def forget_pair(self, a: str, b: str) -> None:
        """A pair's conversation was erased: both sides' counters and last message go too."""

        def work(conn: Connection) -> None:
            seq = self._next_seq(conn)
            conn.execute(
                "UPDATE contacts SET last_id = 0, last_activity = NULL, unread = 0, "
                "read_marker = 0, last_author = NULL, last_client_id = NULL, last_text = NULL, "
                "seq = :seq WHERE (owner = :a AND peer = :b) OR (owner = :b AND peer = :a)",
                {"a": a, "b": b, "seq": seq},
            )

        self._write(work)

    @staticmethod
    def _seen_by(conn: Connection, owner: str, now_ms: int) -> dict[str, Any]:
        """The query parameters that decide what ``owner`` sees (see ``_PEER_READ``)."""
        row = conn.execute(
            "SELECT read_receipts, typing FROM users WHERE username = ?", (owner,)
        ).fetchone()
        receipts, typing = (1, 1) if row is None else row
        return {"owner": owner, "now": now_ms, "receipts": receipts, "typing": typing}

    def contacts(self, owner: str, since: int = 0, now_ms: int = 0) -> tuple[int, list[Contact]]:
        """The feed: (current counter, owner's contacts changed after ``since``), one snapshot.

        ``now_ms``: typing signals that end before it are not shown.
        """

        def work(conn: Connection) -> tuple[int, list[Contact]]:
            seq = int(conn.execute("SELECT seq FROM feed_counter WHERE id = 1").fetchone()[0])
            rows = conn.execute(
                _CONTACT_SELECT + "WHERE c.owner = :owner AND c.seq > :since ORDER BY c.seq",
                {**self._seen_by(conn, owner, now_ms), "since": since},
            ).fetchall()
            return seq, [_contact(row) for row in rows]

        return self._snapshot(work)

    def friend_list(self, owner: str, now_ms: int = 0) -> tuple[list[Listed], list[str]]:
        """(listed and requests, most recent activity first; blocked names): two index
        range scans."""

        def work(conn: Connection) -> tuple[list[Listed], list[str]]:
            rows = conn.execute(_LISTED, self._seen_by(conn, owner, now_ms)).fetchall()
            rows.sort(key=_recent_first, reverse=True)
            blocked = conn.execute(
                "SELECT peer FROM contacts WHERE owner = ? AND blocked <> 0 ORDER BY peer",
                (owner,),
            ).fetchall()
            return [_listed(row) for row in rows], [row[0] for row in blocked]

        return self._snapshot(work)

    def data_version(self, *, wait: bool = True) -> int | None:
        """Changes when another connection (another process) commits to this file.

        ``wait=False``: None at once when the connection is busy (the watcher then
        tries again at its next tick rather than queueing behind a request).
        """
        if not wait:
            if not self._lock.acquire(blocking=False):
                return None
            try:
                return int(self._conn.execute("PRAGMA data_version").fetchone()[0])
            except sqlite3.Error as exc:
                raise storage_unavailable(exc) from exc
            finally:
                self._lock.release()
        return self._read(lambda conn: int(conn.execute("PRAGMA data_version").fetchone()[0]))

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

    def backup_to(self, dest: Path) -> None:
        self._locked(lambda conn: backup(conn, dest))


# Both counters only grow, so their sum moves whenever either does.
_DATA_VERSION = (
    "SELECT (SELECT seq FROM feed_counter WHERE id = 1) "
    "+ (SELECT value FROM meta WHERE key = 'account_epoch')"
)
_NAMES_LOCK = 0x6E616D65  # "name": registrations take it (PostgreSQL advisory lock)


class PostgresAccountStore(AccountStore):
    """The same store on a PostgreSQL database that every node shares (multi-node mode).

    The statements are ``AccountStore``'s; only the way they run differs
    (``backend/storage/sql.py``: a pool of connections, transactions, retries after
    lost races and dropped connections). ``path`` is where the single-node file
    would be: nothing is written there.
    """

    def __init__(self, data_dir: Path, database_url: str, *, pool_size: int = 0) -> None:
        import psycopg

        from backend.storage import sql
        from backend.storage.accounts_pg_schema import ensure_schema

        self.path = Path(data_dir) / ACCOUNTS_FILE
        self._db: PgDatabase = sql.PgDatabase(database_url, size=pool_size or sql.POOL_SIZE)
        try:
            with self._db.connect() as conn:
                ensure_schema(conn)
        except psycopg.Error as exc:
            self._db.close()
            raise sql.pg_unavailable(exc) from exc

    def close(self) -> None:
        self._db.close()

    def _read(self, work: Callable[[Connection], T]) -> T:
        return self._db.read(work)

    def _write(self, work: Callable[[Connection], T]) -> T:
        return self._db.write(work)

    def record_message(self, author: str, recipient: str, last: LastMessage) -> None:
        """One statement, its own transaction: the feed counter's row lock (which orders
        every node's feed writes) is held while PostgreSQL runs it, not across round
        trips to this node — with BEGIN … COMMIT it was held ~5 ms a send under load,
        and every send of the cluster queued on it (docs/performance.md, "(j)")."""
        params = {**last._params(), "recipient": recipient}
        self._db.statement(lambda conn: conn.execute(_RECORD_MESSAGE_ONE_STATEMENT, params))

    def _snapshot(self, work: Callable[[Connection], T]) -> T:
        return self._db.snapshot(work)

    def _serialize_accounts(self, conn: Connection) -> None:
        """Two nodes registering look-alike names at once: the second waits, then sees
        the first's row (its unique key alone would not catch display names)."""
        conn.execute("SELECT pg_advisory_xact_lock(?)", (_NAMES_LOCK,))

    def data_version(self, *, wait: bool = True) -> int | None:
        """Moves with the feed counter and the account epoch (any node's writes).

        Unlike SQLite's ``PRAGMA data_version`` it moves for this node's own writes
        too: the watcher then wakes keys that were woken already, which is harmless.
        """

        def work(conn: Connection) -> int:
            return int(conn.execute(_DATA_VERSION).fetchone()[0])

        return self._db.read(work) if wait else self._db.try_read(work)

    def backup_to(self, dest: Path) -> None:
        raise StorageUnavailable(
            "the accounts live in PostgreSQL in multi-node mode: back them up with pg_dump "
            "(pairchat's backup copies the conversation files only)"
        )


def open_account_store(
    data_dir: Path, *, database_url: str = "", synchronous: str = "NORMAL"
) -> AccountStore:
    """The accounts store: on PostgreSQL when ``database_url`` is set (multi-node mode),
    else the SQLite file in ``data_dir``."""
    if database_url:
        return PostgresAccountStore(data_dir, database_url)
    return AccountStore(data_dir, synchronous=synchronous)


_RECORD_MESSAGE_ONE_STATEMENT = (
    "WITH counter AS (UPDATE feed_counter SET seq = seq + 1 WHERE id = 1 RETURNING seq) "
    + _RECORD_MESSAGE.format(seq="(SELECT seq FROM counter)")
)
