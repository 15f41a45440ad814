"""The one way to open a pairchat SQLite file.

Every connection gets the same pragmas (WAL, its ``-wal`` file cut back to
``JOURNAL_SIZE_LIMIT`` when SQLite restarts it, a busy timeout, synchronous=NORMAL
by default, ``secure_delete`` so a deleted message's text and a deleted file's bytes
are overwritten with zeros, not left in free pages; a new file is also ``auto_vacuum =
INCREMENTAL``) and is autocommit
at the Python level, so callers write ``BEGIN IMMEDIATE`` themselves: a plain
deferred BEGIN that reads then writes fails with "database is locked" under
concurrency instead of waiting.
Schema versions are tracked with ``PRAGMA user_version``. A file this function
creates is readable by its owner only (0600; SQLite gives the ``-wal`` and
``-shm`` files the same mode), inside a data folder that is 0700
(``secure_folder``): messages and password hashes are nobody else's business.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import stat
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from backend.core.errors import StorageUnavailable

BUSY_TIMEOUT_MS = 10_000
# The -wal file is cut back to this size whenever SQLite restarts it after a checkpoint:
# a 24 MiB upload's frames are not kept on disk beside the data for as long as the
# server runs. 4 MiB is what the default autocheckpoint (1000 pages) lets it reach anyway.
JOURNAL_SIZE_LIMIT = 4 * 1024 * 1024
# A new file gives the pages of what is deleted back to the file system when asked
# (``PRAGMA incremental_vacuum``; ``attachments.remove`` asks). It can only be chosen
# before the first table: older files keep auto_vacuum = NONE (VACUUM would convert
# them, and pair files are never VACUUMed) and reuse their free pages instead.
AUTO_VACUUM_INCREMENTAL = 2  # what PRAGMA auto_vacuum reads back
FOLDER_MODE = 0o700
FILE_MODE = 0o600
Migration = Callable[[sqlite3.Connection], None]
log = logging.getLogger(__name__)


def secure_folder(folder: Path) -> None:
    """Create ``folder`` (0700) if needed, and take group/other access away if it has any."""
    folder.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
    mode = stat.S_IMODE(folder.stat().st_mode)
    if mode & 0o077:
        os.chmod(folder, FOLDER_MODE)
        log.warning("data folder %s was mode %o; now %o (owner only)", folder, mode, FOLDER_MODE)


def secure_files(folder: Path) -> int:
    """Make every file in ``folder`` owner-only (files from before 0600 was the rule)."""
    changed = 0
    for path in folder.iterdir():
        try:
            info = path.lstat()
        except FileNotFoundError:
            continue
        if stat.S_ISREG(info.st_mode) and stat.S_IMODE(info.st_mode) & 0o077:
            os.chmod(path, stat.S_IMODE(info.st_mode) & FILE_MODE)
            changed += 1
    return changed


def _owner_only(path: Path) -> None:
    try:
        os.chmod(path, FILE_MODE)
    except OSError as exc:  # the folder is 0700 anyway
        log.warning("cannot make %s owner-only: %s", path, exc)


def connect(path: Path, *, create: bool, synchronous: str = "NORMAL") -> sqlite3.Connection:
    """Open ``path`` with pairchat's pragmas. ``create=False`` never makes a file."""
    mode = "rwc" if create else "rw"
    fresh = create and not path.exists()
    conn = sqlite3.connect(
        f"file:{path}?mode={mode}",
        uri=True,
        isolation_level=None,
        check_same_thread=False,
        timeout=BUSY_TIMEOUT_MS / 1000,
    )
    try:
        if fresh:
            _owner_only(path)
            conn.execute("PRAGMA auto_vacuum = INCREMENTAL")  # before any table
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(f"PRAGMA journal_size_limit = {JOURNAL_SIZE_LIMIT}")
        conn.execute(f"PRAGMA synchronous = {synchronous}")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA secure_delete = ON")  # SECURE_DELETE: not every build's default
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


@contextmanager
def snapshot(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """A read transaction: every query inside sees the same state of the file."""
    conn.execute("BEGIN")
    try:
        yield conn
    finally:
        if conn.in_transaction:
            conn.execute("COMMIT")


def storage_unavailable(exc: sqlite3.Error) -> StorageUnavailable:
    """Translate an SQLite failure into the domain's ``StorageUnavailable`` (why, in words;
    ``damaged`` when the file itself is, as trying again will not mend it)."""
    text = str(exc).lower()
    damaged = False
    if "full" in text:
        why = "the data folder is full"
    elif "readonly" in text or "read-only" in text or "unable to open" in text:
        why = "the data folder cannot be written"
    elif "locked" in text or "busy" in text:
        why = "the database is busy"
    elif "not a database" in text or "malformed" in text or "corrupt" in text:
        why = "this conversation's file is damaged"
        damaged = True
    else:
        why = "storage failed"
    error = StorageUnavailable(f"{why}; nothing was stored, try again later")
    error.damaged = damaged
    return error


def backup(conn: sqlite3.Connection, dest: Path) -> None:
    """A consistent copy of ``conn``'s database with SQLite's online backup API (0600)."""
    fresh = not dest.exists()
    target = sqlite3.connect(dest)
    if fresh:
        _owner_only(dest)
    try:
        conn.backup(target)
    finally:
        target.close()
