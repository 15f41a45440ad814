"""One pair's conversation file: the seed's ``Conversation`` grown up.

The seed's table stays readable (``conversation(author, message, date_sent)``);
a message's ``id`` is SQLite's ``rowid``, so files made by the original server
open without migration. pairchat's additions are versioned with
``PRAGMA user_version``: version 1 adds ``client_id`` and its unique index
(docs/architecture.md says how to add a version).
Never VACUUM these files: without an INTEGER PRIMARY KEY column, VACUUM may
renumber rowids, and ids are what clients hold as cursors.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from backend.errors import ClientIdConflict
from backend.storage.database import backup, connect, immediate, migrate, storage_unavailable

DateSent = int | float | str


class Message(NamedTuple):
    """One stored message. Its wire shape is built at the HTTP edge (``http/replies.py``)."""

    id: int
    author: str
    message: str
    date_sent: DateSent
    client_id: str | None  # lets a sender match a polled copy to its pending one


_SEED_TABLE = "CREATE TABLE IF NOT EXISTS conversation (author text, message text, date_sent text)"


def _v1_client_id(conn: sqlite3.Connection) -> None:
    # The seed server could leave a file with no table (a read before create).
    conn.execute(_SEED_TABLE)
    columns = {row[1] for row in conn.execute("PRAGMA table_info(conversation)")}
    if "client_id" not in columns:
        conn.execute("ALTER TABLE conversation ADD COLUMN client_id text")
    conn.execute(
        "CREATE UNIQUE INDEX IF NOT EXISTS conversation_client_id "
        "ON conversation (author, client_id) WHERE client_id IS NOT NULL"
    )


MIGRATIONS = [_v1_client_id]
SCHEMA_VERSION = len(MIGRATIONS)

_COLUMNS = "rowid, author, message, date_sent, client_id"


def _message(row: tuple[Any, ...]) -> Message:
    return Message(row[0], row[1], row[2], _date(row[3]), row[4])


def _date(value: Any) -> DateSent:
    """Seed files stored timestamps as text: serve numbers as numbers."""
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return value
        return int(number) if number.is_integer() else number
    return value


@dataclass(frozen=True)
class Stored:
    """The outcome of a send: the row's id and date, and whether it already existed."""

    id: int
    date_sent: DateSent
    duplicate: bool


@dataclass(frozen=True)
class Page:
    messages: list[Message]
    has_more: bool


class Conversation:
    """A pair's file behind one long-lived connection, safe to share across threads.

    All access goes through one lock: SQLite connections must not be used by two
    threads at once, and a reused connection is ~70x cheaper than one per call.
    ``close()`` may be called at any time; the next operation reopens the file.
    """

    def __init__(self, path: Path, *, synchronous: str = "NORMAL") -> None:
        self.path = path
        self._synchronous = synchronous
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None

    # -- lifecycle -------------------------------------------------------
    def _open(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = connect(self.path, create=True, synchronous=self._synchronous)
            try:
                migrate(conn, MIGRATIONS)
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    def _run(self, work: Any) -> Any:
        with self._lock:
            try:
                return work(self._open())
            except sqlite3.OperationalError as exc:
                raise storage_unavailable(exc) from exc
            except sqlite3.DatabaseError as exc:
                self._close_locked()
                raise storage_unavailable(exc) from exc

    def close(self) -> None:
        with self._lock:
            self._close_locked()

    def _close_locked(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    # -- the seed's operations ---------------------------------------------
    def initialise_table(self) -> None:
        """Create the file and table if absent (opening does it)."""
        self._run(lambda conn: None)

    def get_history(self) -> list[Message]:
        """Every message, oldest first (the seed's reply)."""
        return self.page().messages

    def add_message(
        self, author: str, message: str, date_sent: int, client_id: str | None = None
    ) -> Stored:
        """Store a message; with ``client_id``, a repeat returns the first row instead."""

        def work(conn: sqlite3.Connection) -> Stored:
            with immediate(conn):
                if client_id is not None:
                    row = conn.execute(
                        "SELECT rowid, message, date_sent FROM conversation "
                        "WHERE author = ? AND client_id = ?",
                        (author, client_id),
                    ).fetchone()
                    if row is not None:
                        if row[1] != message:
                            raise ClientIdConflict(
                                "this client_id was already used for a different message"
                            )
                        return Stored(row[0], _date(row[2]), duplicate=True)
                cursor = conn.execute(
                    "INSERT INTO conversation (author, message, date_sent, client_id) "
                    "VALUES (?, ?, ?, ?)",
                    (author, message, date_sent, client_id),
                )
                assert cursor.lastrowid is not None
                return Stored(cursor.lastrowid, date_sent, duplicate=False)

        result: Stored = self._run(work)
        return result

    # -- pairchat's additions ----------------------------------------------
    def page(
        self,
        *,
        after_id: int | None = None,
        before_id: int | None = None,
        limit: int | None = None,
    ) -> Page:
        """A page of messages, oldest first.

        ``after_id``: the oldest ``limit`` newer than it (incremental polling,
        an index seek on rowid, so its cost does not grow with the history).
        ``before_id``: the newest ``limit`` older than it (scrollback).
        Neither: the newest ``limit`` (or everything without ``limit``).
        """
        fetch = None if limit is None else limit + 1

        def work(conn: sqlite3.Connection) -> Page:
            if after_id is not None:
                sql = f"SELECT {_COLUMNS} FROM conversation WHERE rowid > ? ORDER BY rowid"
                args: tuple[Any, ...] = (after_id,)
                newest_first = False
            elif before_id is not None:
                sql = f"SELECT {_COLUMNS} FROM conversation WHERE rowid < ? ORDER BY rowid DESC"
                args = (before_id,)
                newest_first = True
            elif fetch is not None:
                sql = f"SELECT {_COLUMNS} FROM conversation ORDER BY rowid DESC"
                args = ()
                newest_first = True
            else:
                sql = f"SELECT {_COLUMNS} FROM conversation ORDER BY rowid"
                args = ()
                newest_first = False
            if fetch is not None:
                sql += " LIMIT ?"
                args = (*args, fetch)
            rows = conn.execute(sql, args).fetchall()
            has_more = fetch is not None and len(rows) == fetch
            if has_more:
                rows = rows[:-1]
            if newest_first:
                rows.reverse()
            return Page([_message(row) for row in rows], has_more)

        page: Page = self._run(work)
        return page

    def last_message(self) -> Message | None:
        rows = self.page(limit=1).messages
        return rows[0] if rows else None

    def last_id(self) -> int:
        last = self.last_message()
        return 0 if last is None else last.id

    def count_from(self, author: str, after_id: int) -> int:
        """Messages by ``author`` (any case, as seed files may hold it) newer than ``after_id``."""

        def work(conn: sqlite3.Connection) -> int:
            row = conn.execute(
                "SELECT count(*) FROM conversation WHERE rowid > ? AND lower(author) = ?",
                (after_id, author),
            ).fetchone()
            return int(row[0])

        count: int = self._run(work)
        return count

    def integrity_check(self) -> str:
        result: str = self._run(lambda conn: conn.execute("PRAGMA integrity_check").fetchone()[0])
        return result

    def backup_to(self, dest: Path) -> None:
        """A consistent copy with SQLite's online backup API (safe while serving)."""

        self._run(lambda conn: backup(conn, dest))
