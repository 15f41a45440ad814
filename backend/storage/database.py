"""The one way to open a pairchat SQLite file.

Every connection gets the same pragmas (WAL, a busy timeout, synchronous=NORMAL
by default) and is autocommit at the Python level, so callers write
``BEGIN IMMEDIATE`` themselves: a plain deferred BEGIN that reads then writes
fails with "database is locked" under concurrency instead of waiting.
Schema versions are tracked with ``PRAGMA user_version``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from backend.errors import StorageUnavailable

BUSY_TIMEOUT_MS = 10_000
Migration = Callable[[sqlite3.Connection], None]


def connect(path: Path, *, create: bool, synchronous: str = "NORMAL") -> sqlite3.Connection:
    """Open ``path`` with pairchat's pragmas. ``create=False`` never makes a file."""
    mode = "rwc" if create else "rw"
    conn = sqlite3.connect(
        f"file:{path}?mode={mode}",
        uri=True,
        isolation_level=None,
        check_same_thread=False,
        timeout=BUSY_TIMEOUT_MS / 1000,
    )
    try:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(f"PRAGMA synchronous = {synchronous}")
        conn.execute("PRAGMA foreign_keys = ON")
    except BaseException:
        conn.close()
        raise
    return conn


def migrate(conn: sqlite3.Connection, migrations: Sequence[Migration]) -> None:
    """Bring the file to ``len(migrations)`` by running the missing steps.

    Each step runs in its own ``BEGIN IMMEDIATE`` transaction with its
    ``user_version`` bump, so concurrent openers (threads or processes) never
    run a step twice and a crash mid-step leaves the previous version intact.
    """
    target = len(migrations)
    if conn.execute("PRAGMA user_version").fetchone()[0] >= target:
        return
    with immediate(conn):
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        for step in range(version, target):
            migrations[step](conn)
        conn.execute(f"PRAGMA user_version = {target}")


@contextmanager
def immediate(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """A write transaction that takes the write lock up front."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        if conn.in_transaction:
            conn.rollback()
        raise
    else:
        conn.execute("COMMIT")


def storage_unavailable(exc: sqlite3.Error) -> StorageUnavailable:
    """Translate an SQLite failure into the domain's ``StorageUnavailable`` (why, in words)."""
    text = str(exc).lower()
    if "full" in text:
        why = "the data folder is full"
    elif "readonly" in text or "read-only" in text or "unable to open" in text:
        why = "the data folder cannot be written"
    elif "locked" in text or "busy" in text:
        why = "the database is busy"
    elif "not a database" in text or "malformed" in text or "corrupt" in text:
        why = "this conversation's file is damaged"
    else:
        why = "storage failed"
    return StorageUnavailable(f"{why}; nothing was stored, try again later")


def backup(conn: sqlite3.Connection, dest: Path) -> None:
    """A consistent copy of ``conn``'s database with SQLite's online backup API."""
    target = sqlite3.connect(dest)
    try:
        conn.backup(target)
    finally:
        target.close()
