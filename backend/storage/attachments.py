"""Files in a pair's own SQLite file: the attachment of a message, its bytes in chunks.

A file sent with ``POST /send_file`` lives in the same file as the pair's
messages, so a backup, an export, ``forget``, a move to another node and
Litestream all carry it with no second store. Two tables (schema version 4 of
``backend/storage/conversation.py``; version 6 adds ``charged_to``, ``add_charges``):

- ``attachment(message_id, name, size, type, charged_to)``: one row per message
  that carries a file; ``charged_to``, whose files tally (the per-user quota, in
  the accounts store) the file was charged to, NULL when nobody's (an open-mode
  author with no account), so a deletion gives back exactly what was taken;
- ``attachment_chunk(message_id, seq, data)``: its bytes, ``CHUNK_BYTES`` a row,
  in order of ``seq`` from 0.

Every function here runs on a connection the caller holds, inside the caller's
transaction: a message and all its chunks are written in one (a crash leaves
both or neither), and a deletion removes both in the deletion's. Nothing here
ever holds a whole file: bytes go in from a ``read(n)`` source and come out one
chunk per call.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Collection
from typing import NamedTuple

from backend.storage.database import AUTO_VACUUM_INCREMENTAL

CHUNK_BYTES = 256 * 1024  # bytes per chunk row: a page read and a network write in one


class Attachment(NamedTuple):
    """A message's file as clients see it: its name, size in bytes and media type."""

    name: str
    size: int
    type: str


class Upload(NamedTuple):
    """A file on its way in: its checked name and type, its size, and where its bytes come
    from (``read(n)``, as a file object's; ``b""`` at the end)."""

    name: str
    type: str
    size: int
    read: Callable[[int], bytes]
    charged_to: str | None = None  # whose files tally it is charged to (None: nobody's)


class Freed(NamedTuple):
    """A deleted file: its size, and whose files tally to give it back to (None: nobody's)."""

    size: int
    charged_to: str | None


class FileEntry(NamedTuple):
    """One file of a pair, for ``GET /files``."""

    id: int  # the message's id
    author: str
    date_sent: int | float | str
    attachment: Attachment


def create_tables(conn: sqlite3.Connection) -> None:
    """Schema version 4: the attachment and chunk tables."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS attachment (message_id INTEGER PRIMARY KEY, "
        "name TEXT NOT NULL, size INTEGER NOT NULL, type TEXT NOT NULL)"
    )
    conn.execute(
        "CREATE TABLE IF NOT EXISTS attachment_chunk (message_id INTEGER NOT NULL, "
        "seq INTEGER NOT NULL, data BLOB NOT NULL, PRIMARY KEY (message_id, seq)) WITHOUT ROWID"
    )


def add_charges(conn: sqlite3.Connection) -> None:
    """The ``charged_to`` column. A file stored before it is taken as charged to its
    message's author (lower-cased), as every signed-in send was; only an open-mode
    send was not, and which those were is not known: ``pairchat-server recount-files``
    then makes the tallies count them (``settle_charges``), as version 6 charges every
    file whose author has an account."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(attachment)")}
    if "charged_to" not in columns:
        conn.execute("ALTER TABLE attachment ADD COLUMN charged_to TEXT")
        conn.execute(
            "UPDATE attachment SET charged_to = (SELECT lower(c.author) FROM conversation c "
            "WHERE c.rowid = attachment.message_id)"
        )


def store(conn: sqlite3.Connection, message_id: int, upload: Upload) -> Attachment:
    """Write ``upload``'s bytes as ``message_id``'s file (in the caller's transaction).

    Exactly ``upload.size`` bytes are taken: a source that gives more or fewer is
    a bug upstream, refused with ``ValueError`` so the transaction rolls back.
    """
    size = 0
    seq = 0
    while True:
        data = upload.read(min(CHUNK_BYTES, upload.size - size + 1))
        if not data:
            break
        if size + len(data) > upload.size:
            raise ValueError("the file is longer than its declared size")
        conn.execute(
            "INSERT INTO attachment_chunk (message_id, seq, data) VALUES (?, ?, ?)",
            (message_id, seq, data),
        )
        size += len(data)
        seq += 1
    if size != upload.size:
        raise ValueError("the file is shorter than its declared size")
    attachment = Attachment(upload.name, size, upload.type)
    conn.execute(
        "INSERT INTO attachment (message_id, name, size, type, charged_to) VALUES (?, ?, ?, ?, ?)",
        (message_id, attachment.name, attachment.size, attachment.type, upload.charged_to),
    )
    return attachment


def find(conn: sqlite3.Connection, message_id: int) -> Attachment | None:
    row = conn.execute(
        "SELECT name, size, type FROM attachment WHERE message_id = ?", (message_id,)
    ).fetchone()
    return None if row is None else Attachment(*row)


def find_many(conn: sqlite3.Connection, ids: list[int]) -> dict[int, Attachment]:
    """The attachments of ``ids`` (at most SQLite's host-parameter limit), in one query."""
    marks = ",".join("?" * len(ids))
    return {
        row[0]: Attachment(row[1], row[2], row[3])
        for row in conn.execute(
            f"SELECT message_id, name, size, type FROM attachment WHERE message_id IN ({marks})",
            ids,
        )
    }


def chunk(conn: sqlite3.Connection, message_id: int, seq: int) -> bytes | None:
    """Chunk ``seq`` of a file (None past its end, or once the file is gone)."""
    row = conn.execute(
        "SELECT data FROM attachment_chunk WHERE message_id = ? AND seq = ?", (message_id, seq)
    ).fetchone()
    return None if row is None else bytes(row[0])


def locate(conn: sqlite3.Connection, message_id: int, offset: int) -> tuple[int, int] | None:
    """The chunk that holds byte ``offset`` of a file and where in it: (seq, skip); None
    past the end. Reads the chunks' lengths only, never their bytes."""
    start = 0
    for seq, length in conn.execute(
        "SELECT seq, length(data) FROM attachment_chunk WHERE message_id = ? ORDER BY seq",
        (message_id,),
    ):
        if offset < start + length:
            return seq, offset - start
        start += length
    return None


def remove(conn: sqlite3.Connection, message_id: int) -> Freed | None:
    """Delete a message's file, bytes and all; its size and whose tally it was charged
    to (None: it had none).

    In a pair file made with ``auto_vacuum = INCREMENTAL`` (every file made since) the
    freed pages leave the file in the same transaction (``give_back_pages``)."""
    rows = conn.execute(  # every row read: a write statement left running blocks COMMIT
        "DELETE FROM attachment WHERE message_id = ? RETURNING size, charged_to", (message_id,)
    ).fetchall()
    if not rows:
        return None
    conn.execute("DELETE FROM attachment_chunk WHERE message_id = ?", (message_id,))
    give_back_pages(conn)
    return Freed(int(rows[0][0]), rows[0][1])


def give_back_pages(conn: sqlite3.Connection) -> None:
    """Shrink the file by its free pages, when it was made ``auto_vacuum = INCREMENTAL``;
    an older file keeps them for its next messages (nothing is done)."""
    if conn.execute("PRAGMA auto_vacuum").fetchone()[0] != AUTO_VACUUM_INCREMENTAL:
        return
    free = int(conn.execute("PRAGMA freelist_count").fetchone()[0])
    # One page per statement: the pragma frees a page per step, and Python's sqlite3
    # steps a statement with no result columns once.
    for _ in range(free):
        conn.execute("PRAGMA incremental_vacuum(1)")


def total_bytes(conn: sqlite3.Connection) -> int:
    """Bytes of every file in the pair (the pair quota counts them)."""
    return int(conn.execute("SELECT coalesce(sum(size), 0) FROM attachment").fetchone()[0])


def charged_bytes(conn: sqlite3.Connection) -> dict[str, int]:
    """Bytes of the pair's files per user they were charged to, for giving them back
    when the pair goes (files charged to nobody are left out)."""
    return {
        username: int(size)
        for username, size in conn.execute(
            "SELECT charged_to, sum(size) FROM attachment WHERE charged_to IS NOT NULL "
            "GROUP BY charged_to"
        )
    }


def settle_charges(conn: sqlite3.Connection, accounts: Collection[str]) -> int:
    """Files charged to a name that has no account in ``accounts`` become charged to
    nobody, as a file sent now by an author without an account is (only a file from
    before version 6 can be: ``add_charges`` could not tell). Their count; in the
    caller's transaction."""
    named = [
        row[0]
        for row in conn.execute(
            "SELECT DISTINCT charged_to FROM attachment WHERE charged_to IS NOT NULL"
        )
    ]
    settled = 0
    for name in named:
        if name not in accounts:
            settled += conn.execute(
                "UPDATE attachment SET charged_to = NULL WHERE charged_to = ?", (name,)
            ).rowcount
    return settled


def entries(conn: sqlite3.Connection) -> list[FileEntry]:
    """Every file of the pair with its message's id, author and date, newest first."""
    return [
        FileEntry(row[0], row[1], row[2], Attachment(row[3], row[4], row[5]))
        for row in conn.execute(
            "SELECT a.message_id, c.author, c.date_sent, a.name, a.size, a.type "
            "FROM attachment a JOIN conversation c ON c.rowid = a.message_id "
            "ORDER BY a.message_id DESC"
        )
    ]
