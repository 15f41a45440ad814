"""Accounts, token hashes, contacts (friendships, blocks, read markers) and the change feed.

All of it lives in one file, ``_accounts.sqlite3`` in the data folder: a name no
pair can map to (pair files are ``<name>_<name>.db`` and names never start with
``_``). Plain SQL only; hashing and policy live in ``backend.accounts``.

The change feed is the ``contacts`` table itself: each row is one side of a
conversation (``owner`` sees ``peer``) and carries ``seq``, the value of a global
counter bumped by every change that owner should hear about. A client's cursor is
a counter value; ``GET /updates?since=c`` is one index range scan over
``(owner, seq)``: it never opens a conversation file.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from backend.storage.database import backup, connect, immediate, migrate, storage_unavailable

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


MIGRATIONS = [_v1]


@dataclass(frozen=True)
class User:
    username: str
    display_name: str | None
    password_hash: str


@dataclass(frozen=True)
class Contact:
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


_CONTACT_SELECT = (
    "SELECT c.peer, u.display_name, c.added, c.blocked, c.hidden, c.last_id, c.last_activity, "
    "c.unread, c.read_marker, c.seq FROM contacts c LEFT JOIN users u ON u.username = c.peer "
)


def _contact(row: tuple[Any, ...]) -> Contact:
    return Contact(
        peer=row[0],
        display_name=row[1],
        added=bool(row[2]),
        blocked=bool(row[3]),
        hidden=bool(row[4]),
        last_id=row[5],
        last_activity=row[6],
        unread=row[7],
        read_marker=row[8],
        seq=row[9],
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

    # -- users and tokens ----------------------------------------------------
    def add_user(
        self, username: str, display_name: str | None, password_hash: str, now: int
    ) -> bool:
        """False when the name is taken."""

        def work(conn: sqlite3.Connection) -> bool:
            try:
                conn.execute(
                    "INSERT INTO users (username, display_name, password_hash, created_at) "
                    "VALUES (?, ?, ?, ?)",
                    (username, display_name, password_hash, now),
                )
            except sqlite3.IntegrityError:
                return False
            return True

        return self._write(work)

    def user(self, username: str) -> User | None:
        row = self._read(
            lambda conn: conn.execute(
                "SELECT username, display_name, password_hash FROM users WHERE username = ?",
                (username,),
            ).fetchone()
        )
        return None if row is None else User(*row)

    def set_password_hash(self, username: str, password_hash: str) -> None:
        self._write(
            lambda conn: conn.execute(
                "UPDATE users SET password_hash = ? WHERE username = ?", (password_hash, username)
            )
        )

    def add_token(self, token_hash: str, username: str, now: int) -> None:
        self._write(
            lambda conn: conn.execute(
                "INSERT INTO tokens (token_hash, username, created_at) VALUES (?, ?, ?)",
                (token_hash, username, now),
            )
        )

    def token_user(self, token_hash: str) -> tuple[str, str] | None:
        """(stored hash, username) for a token hash, or None."""
        row = self._read(
            lambda conn: conn.execute(
                "SELECT token_hash, username FROM tokens WHERE token_hash = ?", (token_hash,)
            ).fetchone()
        )
        return None if row is None else (row[0], row[1])

    def delete_token(self, token_hash: str) -> None:
        self._write(
            lambda conn: conn.execute("DELETE FROM tokens WHERE token_hash = ?", (token_hash,))
        )

    # -- contacts and the feed -------------------------------------------------
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

    def record_message(self, author: str, recipient: str, message_id: int, date_sent: int) -> None:
        """Both sides of a stored message enter the feed; the recipient's unread grows."""

        def work(conn: sqlite3.Connection) -> None:
            seq = self._next_seq(conn)
            conn.execute(
                "INSERT INTO contacts (owner, peer, last_id, last_activity, unread, seq) "
                "VALUES (?1, ?2, ?3, ?4, 0, ?5), (?2, ?1, ?3, ?4, 1, ?5) "
                "ON CONFLICT (owner, peer) DO UPDATE SET "
                "last_id = max(last_id, excluded.last_id), "
                "last_activity = excluded.last_activity, "
                "unread = unread + excluded.unread, hidden = 0, seq = excluded.seq",
                (author, recipient, message_id, date_sent, seq),
            )

        self._write(work)

    def repair_feed(
        self, author: str, recipient: str, message_id: int, date_sent: int, unread: int
    ) -> None:
        """Like ``record_message`` with the recipient's unread count given, not added."""

        def work(conn: sqlite3.Connection) -> None:
            seq = self._next_seq(conn)
            conn.execute(
                "INSERT INTO contacts (owner, peer, last_id, last_activity, unread, seq) "
                "VALUES (?1, ?2, ?3, ?4, 0, ?6), (?2, ?1, ?3, ?4, ?5, ?6) "
                "ON CONFLICT (owner, peer) DO UPDATE SET "
                "last_activity = CASE WHEN excluded.last_id > last_id "
                "THEN excluded.last_activity ELSE last_activity END, "
                "last_id = max(last_id, excluded.last_id), "
                "unread = CASE WHEN owner = ?2 THEN excluded.unread ELSE unread END, "
                "hidden = 0, seq = excluded.seq",
                (author, recipient, message_id, date_sent, unread, seq),
            )

        self._write(work)

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

    def data_version(self) -> int:
        """Changes when another connection (another process) commits to this file."""
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

    def backup_to(self, dest: Path) -> None:
        self._read(lambda conn: backup(conn, dest))
