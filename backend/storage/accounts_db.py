"""The accounts database's one connection helper: how the accounts stores run their SQL.

Every store of the accounts database (``accounts_users``, ``tokens``, ``invites``,
``feed``, ``markers``, ``presence``, ``door_keys``) is handed the same ``AccountsDb``
and writes its statements as *work functions* of a connection, run in one of three
ways: ``read`` (one statement or a few, no transaction asked for), ``write`` (one
transaction: all of the work or none of it) and ``snapshot`` (several reads that see
the database at one instant). Where a change spans two concerns it is still one work
function, so it is still one transaction (the stores' docstrings say which).

- ``SqliteAccountsDb``: one shared connection to ``_accounts.sqlite3``, serialised by
  a lock; a write is ``BEGIN IMMEDIATE`` … ``COMMIT``.
- ``PgAccountsDb``: PostgreSQL in multi-node mode (``backend/storage/sql.py``'s pool;
  psycopg is imported only there), plus ``statement``, a single statement in its own
  transaction (``feed.PgFeedStore.record_message``). Each failure that reaches its
  caller (``StorageUnavailable``: the database unreachable, full, busy past its retries)
  is told to ``PgAccountsDb.on_error(operation)`` when set (the metrics'
  ``pairchat_postgres_errors_total{operation}``).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Protocol, TypeVar

from backend.core.errors import StorageUnavailable
from backend.storage.accounts_schema import MIGRATIONS
from backend.storage.database import (
    backup,
    connect,
    immediate,
    migrate,
    snapshot,
    storage_unavailable,
)

ACCOUNTS_CHANGED = "UPDATE meta SET value = value + 1 WHERE key = 'account_epoch'"
"""Run in the transaction of every change other processes must notice at once — an
account deleted, a token revoked: their feed watchers then drop cached names and have
their open event streams check their tokens again (``backend/wakeups/notify.py``)."""

if TYPE_CHECKING:  # psycopg is imported only in multi-node mode
    from backend.storage.sql import Connection, PgDatabase

T = TypeVar("T")
R = TypeVar("R")


class AccountsDb(Protocol):
    """What a store needs of the accounts database."""

    def read(self, work: Callable[[Connection], T]) -> T: ...
    def write(self, work: Callable[[Connection], T]) -> T: ...
    def snapshot(self, work: Callable[[Connection], T]) -> T: ...
    def serialize_accounts(self, conn: Connection) -> None: ...


class AccountsTable:
    """A store over the accounts database: its work runs through the shared ``AccountsDb``."""

    def __init__(self, db: AccountsDb) -> None:
        self._read = db.read
        self._write = db.write
        self._snapshot = db.snapshot
        self._serialize_accounts = db.serialize_accounts


class SqliteAccountsDb:
    """One shared connection to the accounts file, serialised by a lock."""

    def __init__(self, path: Path, *, synchronous: str = "NORMAL") -> None:
        self._lock = threading.Lock()
        self._conn = connect(path, create=True, synchronous=synchronous)
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

    def read(self, work: Callable[[Connection], T]) -> T:
        return self._locked(work)

    def write(self, work: Callable[[Connection], T]) -> T:
        def in_transaction(conn: sqlite3.Connection) -> T:
            with immediate(conn):
                return work(conn)

        return self._locked(in_transaction)

    def snapshot(self, work: Callable[[Connection], T]) -> T:
        """Several reads that see the file at one instant."""

        def in_transaction(conn: sqlite3.Connection) -> T:
            with snapshot(conn):
                return work(conn)

        return self._locked(in_transaction)

    def serialize_accounts(self, conn: Connection) -> None:
        """Registrations one at a time (names checked, then inserted): SQLite's write
        lock already does it."""

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
        return self.read(lambda conn: int(conn.execute("PRAGMA data_version").fetchone()[0]))

    def backup_to(self, dest: Path) -> None:
        self._locked(lambda conn: backup(conn, dest))


# Both counters only grow, so their sum moves whenever either does.
_DATA_VERSION = (
    "SELECT (SELECT seq FROM feed_counter WHERE id = 1) "
    "+ (SELECT value FROM meta WHERE key = 'account_epoch')"
)
_NAMES_LOCK = 0x6E616D65  # "name": registrations take it (PostgreSQL advisory lock)


def _counted(
    run: Callable[[Callable[[Connection], T]], R], operation: str
) -> Callable[[Callable[[Connection], T]], R]:
    """``run``, telling ``PgAccountsDb.on_error`` of each ``StorageUnavailable`` it raises."""

    def counted(work: Callable[[Connection], T]) -> R:
        try:
            return run(work)
        except StorageUnavailable:
            on_error = PgAccountsDb.on_error
            if on_error is not None:
                on_error(operation)
            raise

    return counted


class PgAccountsDb:
    """The same ways to run work on a PostgreSQL database every node shares
    (``backend/storage/sql.py``: a pool of connections, transactions, retries after
    lost races and dropped connections)."""

    on_error: ClassVar[Callable[[str], None] | None] = None
    """Told the operation (read, write, snapshot, statement) of each failure that reached
    its caller: one hook for the process, set by the metrics (one store per worker)."""

    def __init__(self, db: PgDatabase) -> None:
        self._db = db
        self.read = _counted(db.read, "read")
        self.write = _counted(db.write, "write")
        self.snapshot = _counted(db.snapshot, "snapshot")
        self.statement = _counted(db.statement, "statement")
        self._try_read = _counted(db.try_read, "read")

    def close(self) -> None:
        self._db.close()

    def serialize_accounts(self, conn: Connection) -> None:
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

        return self.read(work) if wait else self._try_read(work)

    def backup_to(self, dest: Path) -> None:
        raise StorageUnavailable(
            "the accounts live in PostgreSQL in multi-node mode: back them up with pg_dump "
            "(pairchat's backup copies the conversation files only)"
        )
