"""Accounts, token hashes, contacts (friendships, blocks, read markers) and the change feed.

All of it lives in one file, ``_accounts.sqlite3`` in the data folder: a name no
pair can map to (pair files are ``<name>_<name>.db`` and names never start with
``_``). Plain SQL only; hashing and policy live in ``backend.accounts``.

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
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

from backend.errors import DisplayNameTaken, InvalidInvite
from backend.storage.conversation import Message
from backend.storage.database import backup, connect, immediate, migrate, storage_unavailable
from backend.usernames import display_key

ACCOUNTS_FILE = "_accounts.sqlite3"
T = TypeVar("T")


def _v1(conn: sqlite3.Connection) -> None:
    # One statement at a time: executescript() would commit the migration's transaction.
    script = """
        CREATE TABLE users (
            username TEXT PRIMARY KEY,
            display_name TEXT,
            password_hash TEXT NOT NULL,
            created_at INTEGER NOT NULL
        );
        CREATE TABLE tokens (
            token_hash TEXT PRIMARY KEY,
            username TEXT NOT NULL REFERENCES users(username) ON DELETE CASCADE,
            created_at INTEGER NOT NULL
        );
        CREATE TABLE contacts (
            owner TEXT NOT NULL,
            peer TEXT NOT NULL,
            added INTEGER NOT NULL DEFAULT 0,
            blocked INTEGER NOT NULL DEFAULT 0,
            hidden INTEGER NOT NULL DEFAULT 0,
            last_id INTEGER NOT NULL DEFAULT 0,
            last_activity INTEGER,
            unread INTEGER NOT NULL DEFAULT 0,
            read_marker INTEGER NOT NULL DEFAULT 0,
            seq INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (owner, peer)
        ) WITHOUT ROWID;
        CREATE INDEX contacts_feed ON contacts (owner, seq);
        CREATE INDEX contacts_seq ON contacts (seq);
        CREATE TABLE feed_counter (id INTEGER PRIMARY KEY CHECK (id = 1), seq INTEGER NOT NULL);
        INSERT INTO feed_counter (id, seq) VALUES (1, 0)
        """
    for statement in script.split(";"):
        conn.execute(statement)


def _v2(conn: sqlite3.Connection) -> None:
    columns = {row[1] for row in conn.execute("PRAGMA table_info(tokens)")}
    if "last_used" not in columns:
        conn.execute("ALTER TABLE tokens ADD COLUMN last_used INTEGER")
    columns = {row[1] for row in conn.execute("PRAGMA table_info(users)")}
    if "deleted_at" not in columns:
        conn.execute("ALTER TABLE users ADD COLUMN deleted_at INTEGER")
    if "display_key" not in columns:
        conn.execute("ALTER TABLE users ADD COLUMN display_key TEXT")
    columns = {row[1] for row in conn.execute("PRAGMA table_info(contacts)")}
    for column in ("last_author", "last_client_id", "last_text"):  # the text last: rows
        if column not in columns:  # read for their other columns never touch it
            conn.execute(f"ALTER TABLE contacts ADD COLUMN {column} TEXT")
    for username, shown in conn.execute(
        "SELECT username, display_name FROM users WHERE display_name IS NOT NULL"
    ).fetchall():
        conn.execute(
            "UPDATE users SET display_key = ? WHERE username = ?", (display_key(shown), username)
        )
    script = """
        CREATE INDEX IF NOT EXISTS users_display_key ON users (display_key)
            WHERE display_key IS NOT NULL;
        CREATE INDEX IF NOT EXISTS tokens_user ON tokens (username);
        CREATE TABLE IF NOT EXISTS invites (
            code_hash TEXT PRIMARY KEY,
            created_at INTEGER NOT NULL,
            expires_at INTEGER,
            used_by TEXT,
            used_at INTEGER
        );
        CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
        INSERT OR IGNORE INTO meta (key, value) VALUES ('account_epoch', 0)
        """
    for statement in script.split(";"):
        conn.execute(statement)


MIGRATIONS = [_v1, _v2]


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


class Listed(NamedTuple):
    """A person in the owner's friend list (``GET /friends``), with the pair's newest message."""

    username: str
    display_name: str | None
    unread: int
    last_message: Message | None
    deleted: bool
    last_id: int  # > 0 with no ``last_message``: a pair from before version 2


# Who belongs in a friend list: not blocked, not hidden, added or written to (chat.listed).
_LISTED = (
    "SELECT c.peer, u.display_name, c.unread, c.last_id, c.last_author, c.last_text, "
    "c.last_activity, c.last_client_id, u.deleted_at IS NOT NULL, c.seq "
    "FROM contacts c LEFT JOIN users u ON u.username = c.peer "
    "WHERE c.owner = ? AND NOT c.blocked AND NOT c.hidden AND (c.added OR c.last_id > 0)"
)  # sorted in Python: SQLite's ORDER BY here (a temporary B-tree) costs more than the scan


def _recent_first(row: tuple[Any, ...]) -> tuple[int, int]:
    return (row[6] or 0, row[9])


_tuple = tuple.__new__  # 3x cheaper than a NamedTuple's generated __new__, same object


def _listed(row: tuple[Any, ...]) -> Listed:
    last = None if row[4] is None else _tuple(Message, (row[3], row[4], row[5], row[6], row[7]))
    listed: Listed = _tuple(Listed, (row[0], row[1], row[2], last, bool(row[8]), row[3]))
    return listed


# An upsert's SET clauses for the newest message: taken only from a newer message (all
# expressions see the row as it was, so this must come before last_id's own update).
_NEWEST_TEXT = ", ".join(
    f"{column} = CASE WHEN excluded.last_id >= last_id THEN excluded.{column} ELSE {column} END"
    for column in ("last_author", "last_client_id", "last_text")
)

_CONTACT_COLUMNS = (
    "c.peer, u.display_name, c.added, c.blocked, c.hidden, c.last_id, c.last_activity, "
    "c.unread, c.read_marker, c.seq, u.deleted_at IS NOT NULL"
)
_CONTACT_SELECT = (
    f"SELECT {_CONTACT_COLUMNS} FROM contacts c LEFT JOIN users u ON u.username = c.peer "
)


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
    )


class AccountStore:
    """One shared connection to the accounts file, serialised by a lock."""

    def __init__(self, data_dir: Path, *, synchronous: str = "NORMAL") -> None:
        self.path = Path(data_dir) / ACCOUNTS_FILE
        self._lock = threading.Lock()
        self._conn = connect(self.path, create=True, synchronous=synchronous)
        migrate(self._conn, MIGRATIONS)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def _read(self, work: Callable[[sqlite3.Connection], T]) -> T:
        with self._lock:
            try:
                return work(self._conn)
            except sqlite3.Error as exc:
                raise storage_unavailable(exc) from exc

    def _write(self, work: Callable[[sqlite3.Connection], T]) -> T:
        def in_transaction(conn: sqlite3.Connection) -> T:
            with immediate(conn):
                return work(conn)

        return self._read(in_transaction)

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
        key = None if display_name is None else display_key(display_name)

        def work(conn: sqlite3.Connection) -> bool:
            if conn.execute("SELECT 1 FROM users WHERE username = ?", (username,)).fetchone():
                return False
            if (
                key is not None
                and conn.execute(
                    "SELECT 1 FROM users WHERE display_key = :key OR username = :key LIMIT 1",
                    {"key": key},
                ).fetchone()
            ):
                raise DisplayNameTaken("that display name reads like another user's name")
            if invite_hash is not None:
                used = conn.execute(
                    "UPDATE invites SET used_by = :user, used_at = :now WHERE code_hash = :code "
                    "AND used_by IS NULL AND (expires_at IS NULL OR expires_at > :now)",
                    {"user": username, "now": now, "code": invite_hash},
                )
                if used.rowcount != 1:
                    raise InvalidInvite("the invite code is unknown, used or expired")
            conn.execute(
                "INSERT INTO users (username, display_name, password_hash, created_at, "
                "display_key) VALUES (?, ?, ?, ?, ?)",
                (username, display_name, password_hash, now, key),
            )
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

        def work(conn: sqlite3.Connection) -> int:
            conn.execute(
                "UPDATE users SET password_hash = ? WHERE username = ?", (password_hash, username)
            )
            gone = conn.execute(
                "DELETE FROM tokens WHERE username = ? AND token_hash IS NOT ?",
                (username, keep_token),
            )
            return gone.rowcount

        return self._write(work)

    def delete_user(self, username: str, now: int) -> list[str]:
        """Tombstone the account: no password, tokens, name or contacts of its own.

        The peers keep their side (their contact rows and the pair files) and
        hear about it in their feed; the name stays taken for good. Returns the peers.
        """

        def work(conn: sqlite3.Connection) -> list[str]:
            conn.execute(
                "UPDATE users SET deleted_at = ?, password_hash = '', display_name = NULL, "
                "display_key = NULL WHERE username = ?",
                (now, username),
            )
            conn.execute("DELETE FROM tokens WHERE username = ?", (username,))
            conn.execute("DELETE FROM contacts WHERE owner = ?", (username,))
            seq = self._next_seq(conn)
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
    def add_token(self, token_hash: str, username: str, now: int) -> None:
        self._write(
            lambda conn: conn.execute(
                "INSERT INTO tokens (token_hash, username, created_at, last_used) "
                "VALUES (?, ?, ?, ?)",
                (token_hash, username, now, now),
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
    def _next_seq(conn: sqlite3.Connection) -> int:
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
        """Set ``added``/``blocked``/``hidden`` on owner's side and announce it in owner's feed."""
        names = sorted(flags)
        assert set(names) <= {"added", "blocked", "hidden"}

        def work(conn: sqlite3.Connection) -> None:
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
        row = self._read(
            lambda conn: conn.execute(
                _CONTACT_SELECT + "WHERE c.owner = ? AND c.peer = ?", (owner, peer)
            ).fetchone()
        )
        return None if row is None else _contact(row)

    def record_message(self, author: str, recipient: str, last: LastMessage) -> None:
        """Both sides of a stored message enter the feed; the recipient's unread grows."""

        def work(conn: sqlite3.Connection) -> None:
            seq = self._next_seq(conn)
            conn.execute(
                "INSERT INTO contacts (owner, peer, last_id, last_activity, unread, seq, "
                "last_author, last_client_id, last_text) "
                "VALUES (:author, :recipient, :id, :date, 0, :seq, :author, :client_id, :text), "
                "(:recipient, :author, :id, :date, 1, :seq, :author, :client_id, :text) "
                "ON CONFLICT (owner, peer) DO UPDATE SET "
                "last_id = max(last_id, excluded.last_id), "
                "last_activity = excluded.last_activity, "
                f"{_NEWEST_TEXT}, "
                "unread = unread + excluded.unread, hidden = 0, seq = excluded.seq",
                {
                    "author": author,
                    "recipient": recipient,
                    "id": last.id,
                    "date": last.date_sent,
                    "seq": seq,
                    "client_id": last.client_id,
                    "text": last.message,
                },
            )

        self._write(work)

    def repair_feed(self, author: str, recipient: str, last: LastMessage, unread: int) -> None:
        """Like ``record_message`` with the recipient's unread count given, not added."""

        def work(conn: sqlite3.Connection) -> None:
            seq = self._next_seq(conn)
            conn.execute(
                "INSERT INTO contacts (owner, peer, last_id, last_activity, unread, seq, "
                "last_author, last_client_id, last_text) "
                "VALUES (:author, :recipient, :id, :date, 0, :seq, :author, :client_id, :text), "
                "(:recipient, :author, :id, :date, :unread, :seq, :author, :client_id, :text) "
                "ON CONFLICT (owner, peer) DO UPDATE SET "
                "last_activity = CASE WHEN excluded.last_id > last_id "
                "THEN excluded.last_activity ELSE last_activity END, "
                f"{_NEWEST_TEXT}, "
                "last_id = max(last_id, excluded.last_id), "
                "unread = CASE WHEN owner = :recipient THEN excluded.unread ELSE unread END, "
                "hidden = 0, seq = excluded.seq",
                {
                    "author": author,
                    "recipient": recipient,
                    "id": last.id,
                    "date": last.date_sent,
                    "unread": unread,
                    "seq": seq,
                    "client_id": last.client_id,
                    "text": last.message,
                },
            )

        self._write(work)

    def set_last_message(self, a: str, b: str, last: LastMessage) -> None:
        """Fill in a pair's newest message on both its rows (pairs from before version 2)."""
        self._write(
            lambda conn: conn.execute(
                "UPDATE contacts SET last_author = :author, last_client_id = :client_id, "
                "last_text = :text WHERE last_id = :id AND ((owner = :a AND peer = :b) "
                "OR (owner = :b AND peer = :a))",
                {
                    "author": last.author,
                    "client_id": last.client_id,
                    "text": last.message,
                    "id": last.id,
                    "a": a,
                    "b": b,
                },
            )
        )

    def set_read_marker(self, owner: str, peer: str, marker: int, unread: int) -> None:
        def work(conn: sqlite3.Connection) -> None:
            seq = self._next_seq(conn)
            conn.execute(
                "INSERT INTO contacts (owner, peer, read_marker, unread, seq) "
                "VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (owner, peer) DO UPDATE SET read_marker = excluded.read_marker, "
                "unread = excluded.unread, seq = excluded.seq",
                (owner, peer, marker, unread, seq),
            )

        self._write(work)

    def forget_pair(self, a: str, b: str) -> None:
        """A pair's conversation was erased: both sides' counters and last message go too."""

        def work(conn: sqlite3.Connection) -> None:
            seq = self._next_seq(conn)
            conn.execute(
                "UPDATE contacts SET last_id = 0, last_activity = NULL, unread = 0, "
                "read_marker = 0, last_author = NULL, last_client_id = NULL, last_text = NULL, "
                "seq = :seq WHERE (owner = :a AND peer = :b) OR (owner = :b AND peer = :a)",
                {"a": a, "b": b, "seq": seq},
            )

        self._write(work)

    def contacts(self, owner: str, since: int = 0) -> tuple[int, list[Contact]]:
        """The feed: (current counter, owner's contacts changed after ``since``), one snapshot."""

        def work(conn: sqlite3.Connection) -> tuple[int, list[Contact]]:
            conn.execute("BEGIN")
            try:
                seq = int(conn.execute("SELECT seq FROM feed_counter WHERE id = 1").fetchone()[0])
                rows = conn.execute(
                    _CONTACT_SELECT + "WHERE c.owner = ? AND c.seq > ? ORDER BY c.seq",
                    (owner, since),
                ).fetchall()
            finally:
                conn.execute("COMMIT")
            return seq, [_contact(row) for row in rows]

        return self._read(work)

    def friend_list(self, owner: str) -> tuple[list[Listed], list[str]]:
        """(listed, most recent activity first; blocked names): two index range scans."""

        def work(conn: sqlite3.Connection) -> tuple[list[Listed], list[str]]:
            conn.execute("BEGIN")
            try:
                rows = conn.execute(_LISTED, (owner,)).fetchall()
                rows.sort(key=_recent_first, reverse=True)
                blocked = conn.execute(
                    "SELECT peer FROM contacts WHERE owner = ? AND blocked ORDER BY peer", (owner,)
                ).fetchall()
            finally:
                conn.execute("COMMIT")
            return [_listed(row) for row in rows], [row[0] for row in blocked]

        return self._read(work)

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

        def work(conn: sqlite3.Connection) -> tuple[int, list[tuple[str, str]]]:
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
        self._read(lambda conn: backup(conn, dest))
