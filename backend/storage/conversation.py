"""One pair's conversation file: the seed's ``Conversation`` grown up.

The seed's table stays readable (``conversation(author, message, date_sent)``);
a message's ``id`` is SQLite's ``rowid``, so files made by the original server
open without migration. pairchat's additions are versioned with
``PRAGMA user_version``: version 1 adds ``client_id`` and its unique index;
version 2 adds revisions, edits, deletions and replies; version 3 adds
reactions, one per person per message; version 4 adds files, a message's
attachment and its bytes in chunks (``backend/storage/attachments.py``);
version 5 makes the search index cover file names (``search_index.upgrade``);
version 6 records whose files tally each file was charged to
(``attachments.add_charges``)
(docs/architecture.md says how to add a version).

Revisions: every change to a pair (a new message, an edit, a deletion) takes the
next value of the pair's revision, ``max(rev) + 1`` read through a unique index
inside the write transaction, and stores it on the message it changed. So a
message's ``rev`` is when it last changed, the pair's revision is the largest
``rev``, and "everything changed since r" is an index range scan. Rows inserted
by code that knows nothing of revisions (the original server, a script) are
given one by a trigger. A deleted message keeps its row, id and author, with
``deleted = 1`` and an empty text. Whole-history search is ``search_index``.
Never VACUUM these files: without an INTEGER PRIMARY KEY column, VACUUM may
renumber rowids, and ids are what clients hold as cursors.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from backend.core.errors import (
    ClientIdConflict,
    FilesQuotaExceeded,
    InvalidField,
    MessageDeleted,
    NoAttachment,
    NotYourMessage,
    UnknownMessage,
)
from backend.storage import attachments, search_index
from backend.storage.attachments import Attachment, FileEntry, Freed, Upload
from backend.storage.database import (
    backup,
    connect,
    immediate,
    migrate,
    snapshot,
    storage_unavailable,
)

DateSent = int | float | str


class Message(NamedTuple):
    """One stored message. Its wire shape is built at the HTTP edge (``http/replies.py``)."""

    id: int
    author: str
    message: str  # "" once deleted
    date_sent: DateSent
    client_id: str | None  # lets a sender match a polled copy to its pending one
    rev: int = 0  # the pair's revision when this message last changed
    edited_at: int | None = None
    deleted: bool = False
    reply_to: int | None = None
    reactions: Reactions | None = None  # emoji -> usernames, sorted; None: none
    attachment: Attachment | None = None  # its file; None: none (or deleted)


Reactions = dict[str, list[str]]

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


_NEXT_REV = "(SELECT coalesce(max(rev), 0) + 1 FROM conversation)"


def _v2_revisions(conn: sqlite3.Connection) -> None:
    columns = {row[1] for row in conn.execute("PRAGMA table_info(conversation)")}
    for name, kind in (
        ("rev", "INTEGER"),
        ("edited_at", "INTEGER"),
        ("deleted", "INTEGER NOT NULL DEFAULT 0"),
        ("reply_to", "INTEGER"),
    ):
        if name not in columns:
            conn.execute(f"ALTER TABLE conversation ADD COLUMN {name} {kind}")
    # Existing rows: rev = rowid (after any revs already given, for a half-way file).
    base = conn.execute("SELECT coalesce(max(rev), 0) FROM conversation").fetchone()[0]
    conn.execute("UPDATE conversation SET rev = rowid + ? WHERE rev IS NULL", (base,))
    conn.execute("CREATE UNIQUE INDEX IF NOT EXISTS conversation_rev ON conversation (rev)")
    conn.execute(
        "CREATE TRIGGER IF NOT EXISTS conversation_rev_on_insert AFTER INSERT ON conversation "
        f"WHEN new.rev IS NULL BEGIN UPDATE conversation SET rev = {_NEXT_REV} "
        "WHERE rowid = new.rowid; END"
    )
    # The search index came here (an empty file's, at once); version 5 makes it now.


def _v3_reactions(conn: sqlite3.Connection) -> None:
    # One row per person per message; a message's reactions are one index range.
    conn.execute(
        "CREATE TABLE IF NOT EXISTS reaction (message_id INTEGER NOT NULL, "
        "username TEXT NOT NULL, emoji TEXT NOT NULL, PRIMARY KEY (message_id, username)) "
        "WITHOUT ROWID"
    )


MIGRATIONS = [
    _v1_client_id,
    _v2_revisions,
    _v3_reactions,
    attachments.create_tables,
    search_index.upgrade,
    attachments.add_charges,
]
SCHEMA_VERSION = len(MIGRATIONS)

_COLUMNS = "rowid, author, message, date_sent, client_id, rev, edited_at, deleted, reply_to"


def _message(row: tuple[Any, ...]) -> Message:
    return Message(
        row[0], row[1], row[2], _date(row[3]), row[4], row[5], row[6], bool(row[7]), row[8]
    )


_MAX_ID = 2**63 - 1


def _with_extras(conn: sqlite3.Connection, messages: list[Message]) -> list[Message]:
    """``messages`` with their reactions and attachments, read in one query each."""
    if not messages:
        return messages
    found: dict[int, Reactions] = {}
    files: dict[int, Attachment] = {}
    for start in range(0, len(messages), _IN_CHUNK):
        ids = [message.id for message in messages[start : start + _IN_CHUNK]]
        marks = ",".join("?" * len(ids))
        for message_id, emoji, username in conn.execute(
            f"SELECT message_id, emoji, username FROM reaction WHERE message_id IN ({marks}) "
            "ORDER BY message_id, emoji, username",
            ids,
        ):
            found.setdefault(message_id, {}).setdefault(emoji, []).append(username)
        files.update(attachments.find_many(conn, ids))
    if not found and not files:
        return messages
    return [
        message._replace(reactions=found.get(message.id), attachment=files.get(message.id))
        if message.id in found or message.id in files
        else message
        for message in messages
    ]


_IN_CHUNK = 5000  # ids per query: under SQLite's host-parameter limit; pages are smaller


def _revision(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT coalesce(max(rev), 0) FROM conversation").fetchone()[0])


def _next_rev(conn: sqlite3.Connection) -> int:
    return _revision(conn) + 1


def _exists(conn: sqlite3.Connection, message_id: int) -> bool:
    return (
        conn.execute("SELECT 1 FROM conversation WHERE rowid = ?", (message_id,)).fetchone()
        is not None
    )


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
    rev: int = 0  # the message's revision
    attachment: Attachment | None = None  # its file, for a file message


@dataclass(frozen=True)
class Page:
    """Messages and whether more lie beyond them; ``rev``: the pair's revision they are
    current to (read no later than the messages, so every change up to it is in them);
    ``has_more_after``: only for a window around a message (newer ones exist after it)."""

    messages: list[Message]
    has_more: bool
    rev: int = 0
    has_more_after: bool | None = None


@dataclass(frozen=True)
class Changed:
    """The outcome of an edit or a deletion: the message as it is now, and whether
    this request changed it (an edit to the same text, a second deletion: no)."""

    message: Message
    changed: bool
    freed: Freed | None = None  # a deletion's file, now gone (what its tally gets back)


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
        self._searchable = False  # the search index is known to exist

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
        self._searchable = False

    # -- the seed's operations ---------------------------------------------
    def initialise_table(self) -> None:
        """Create the file and table if absent (opening does it)."""
        self._run(lambda conn: None)

    def get_history(self) -> list[Message]:
        """Every message, oldest first (the seed's reply)."""
        return self.page().messages

    def add_message(
        self,
        author: str,
        message: str,
        date_sent: int,
        client_id: str | None = None,
        reply_to: int | None = None,
        upload: Upload | None = None,
        pair_quota: int | None = None,
    ) -> Stored:
        """Store a message; with ``client_id``, a repeat returns the first row instead.

        ``reply_to`` must be a message of this pair (``InvalidField`` otherwise).
        A repeat of a message since edited or deleted is still that message.
        ``upload``: a file sent with it, stored with the message in one transaction
        (a repeat stores nothing); ``pair_quota``: the bytes of files the pair may
        hold, checked in that transaction (``FilesQuotaExceeded``).
        """

        def work(conn: sqlite3.Connection) -> Stored:
            with immediate(conn):
                if client_id is not None:
                    row = conn.execute(
                        "SELECT rowid, message, date_sent, rev, edited_at IS NOT NULL OR deleted "
                        "FROM conversation WHERE author = ? AND client_id = ?",
                        (author, client_id),
                    ).fetchone()
                    if row is not None:
                        if row[1] != message and not row[4]:
                            raise ClientIdConflict(
                                "this client_id was already used for a different message"
                            )
                        return Stored(
                            row[0],
                            _date(row[2]),
                            duplicate=True,
                            rev=row[3],
                            attachment=attachments.find(conn, row[0]),
                        )
                if reply_to is not None and not _exists(conn, reply_to):
                    raise InvalidField("'reply_to' is not a message of this conversation")
                if upload is not None and pair_quota is not None:
                    held = attachments.total_bytes(conn)
                    if held + upload.size > pair_quota:
                        raise FilesQuotaExceeded(
                            f"this conversation's files would pass its quota of {pair_quota} "
                            f"bytes ({held} bytes held); delete some files first"
                        )
                rev = _next_rev(conn)
                cursor = conn.execute(
                    "INSERT INTO conversation (author, message, date_sent, client_id, rev, "
                    "reply_to) VALUES (?, ?, ?, ?, ?, ?)",
                    (author, message, date_sent, client_id, rev, reply_to),
                )
                message_id = cursor.lastrowid
                assert message_id is not None
                attachment = None
                if upload is not None:
                    attachment = attachments.store(conn, message_id, upload)
                return Stored(message_id, date_sent, False, rev, attachment)

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
        """A page of messages, oldest first, and the pair's revision it is current to.

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
            rev = _revision(conn)  # first: the page holds at least every change up to it
            rows = conn.execute(sql, args).fetchall()
            has_more = fetch is not None and len(rows) == fetch
            if has_more:
                rows = rows[:-1]
            if newest_first:
                rows.reverse()
            messages = _with_extras(conn, [_message(row) for row in rows])
            return Page(messages, has_more, rev)

        page: Page = self._run(work)
        return page

    def changes(self, after_rev: int, limit: int) -> Page:
        """Every message whose ``rev`` is past ``after_rev`` (new, edited or deleted),
        in revision order, at most ``limit``.

        The page's ``rev`` is the pair's revision when the page holds every change,
        else the ``rev`` of its last message: passed back as ``after_rev``, it
        continues where the page ended.
        """

        def work(conn: sqlite3.Connection) -> Page:
            with snapshot(conn):
                rev = _revision(conn)
                rows = conn.execute(
                    f"SELECT {_COLUMNS} FROM conversation WHERE rev > ? ORDER BY rev LIMIT ?",
                    (after_rev, limit + 1),
                ).fetchall()
                has_more = len(rows) > limit
                messages = _with_extras(conn, [_message(row) for row in rows[:limit]])
            return Page(messages, has_more, messages[-1].rev if has_more else rev)

        page: Page = self._run(work)
        return page

    def around(self, message_id: int, limit: int) -> Page:
        """The ``limit`` messages centred on ``message_id``, oldest first.

        Half before it (the rest after; a side with too few gives its room to the
        other); ``has_more``: older ones exist before the page, ``has_more_after``:
        newer ones after it. ``UnknownMessage`` when the id is not in this pair.
        """

        def work(conn: sqlite3.Connection) -> Page:
            with snapshot(conn):
                rev = _revision(conn)
                centre = conn.execute(
                    f"SELECT {_COLUMNS} FROM conversation WHERE rowid = ?", (message_id,)
                ).fetchone()
                if centre is None:
                    raise UnknownMessage(f"there is no message {message_id} in this conversation")
                older = conn.execute(
                    f"SELECT {_COLUMNS} FROM conversation WHERE rowid < ? "
                    "ORDER BY rowid DESC LIMIT ?",
                    (message_id, limit),
                ).fetchall()
                newer = conn.execute(
                    f"SELECT {_COLUMNS} FROM conversation WHERE rowid > ? ORDER BY rowid LIMIT ?",
                    (message_id, limit),
                ).fetchall()
                room = limit - 1
                before = min(len(older), max(room // 2, room - len(newer)))
                after = min(len(newer), room - before)
                rows = [*reversed(older[:before]), centre, *newer[:after]]
                messages = _with_extras(conn, [_message(row) for row in rows])
            return Page(
                messages,
                len(older) > before,
                rev,
                has_more_after=len(newer) > after,
            )

        page: Page = self._run(work)
        return page

    def revision(self) -> int:
        """The pair's revision: 0 before anything was said."""
        rev: int = self._run(_revision)
        return rev

    def edit_message(self, message_id: int, author: str | None, text: str, now: int) -> Changed:
        """Replace a message's text; only ``author`` may (``None``: anyone, open mode).

        A deleted message stays deleted (``MessageDeleted``); the same text again
        changes nothing.
        """

        def work(conn: sqlite3.Connection) -> Changed:
            with immediate(conn):
                current = self._own(conn, message_id, author)
                if current.deleted:
                    raise MessageDeleted("that message was deleted; it cannot be edited")
                if current.message == text:
                    return Changed(current, changed=False)
                rev = _next_rev(conn)
                conn.execute(
                    "UPDATE conversation SET message = ?, edited_at = ?, rev = ? WHERE rowid = ?",
                    (text, now, rev, message_id),
                )
                edited = current._replace(message=text, edited_at=now, rev=rev)
                return Changed(_with_extras(conn, [edited])[0], True)

        changed: Changed = self._run(work)
        return changed

    def delete_message(self, message_id: int, author: str | None) -> Changed:
        """Empty a message's text for good and mark it deleted (it keeps its id and row).

        Only ``author`` may (``None``: anyone, open mode); deleting twice changes nothing.
        """

        def work(conn: sqlite3.Connection) -> Changed:
            with immediate(conn):
                current = self._own(conn, message_id, author)
                if current.deleted:
                    return Changed(current, changed=False)
                rev = _next_rev(conn)
                conn.execute(
                    "UPDATE conversation SET message = '', deleted = 1, rev = ? WHERE rowid = ?",
                    (rev, message_id),
                )
                conn.execute("DELETE FROM reaction WHERE message_id = ?", (message_id,))
                current_file = attachments.remove(conn, message_id)
                gone = current._replace(
                    message="", deleted=True, rev=rev, reactions=None, attachment=None
                )
                return Changed(gone, True, freed=current_file)

        changed: Changed = self._run(work)
        return changed

    def react(self, message_id: int, username: str, emoji: str) -> Changed:
        """Set ``username``'s one reaction to a message to ``emoji`` (``""``: remove it).

        Anyone of the pair may react to any message of it; a deleted message takes
        none (``MessageDeleted``). The same reaction again (or removing none)
        changes nothing; a change takes the pair's next revision, as an edit does.
        """

        def work(conn: sqlite3.Connection) -> Changed:
            with immediate(conn):
                current = self._own(conn, message_id, None)
                if current.deleted:
                    raise MessageDeleted("that message was deleted; it takes no reactions")
                row = conn.execute(
                    "SELECT emoji FROM reaction WHERE message_id = ? AND username = ?",
                    (message_id, username),
                ).fetchone()
                if (row[0] if row else "") == emoji:
                    return Changed(_with_extras(conn, [current])[0], changed=False)
                rev = _next_rev(conn)
                conn.execute("UPDATE conversation SET rev = ? WHERE rowid = ?", (rev, message_id))
                if emoji:
                    conn.execute(
                        "INSERT OR REPLACE INTO reaction (message_id, username, emoji) "
                        "VALUES (?, ?, ?)",
                        (message_id, username, emoji),
                    )
                else:
                    conn.execute(
                        "DELETE FROM reaction WHERE message_id = ? AND username = ?",
                        (message_id, username),
                    )
                return Changed(_with_extras(conn, [current._replace(rev=rev)])[0], True)

        changed: Changed = self._run(work)
        return changed

    @staticmethod
    def _own(conn: sqlite3.Connection, message_id: int, author: str | None) -> Message:
        row = conn.execute(
            f"SELECT {_COLUMNS} FROM conversation WHERE rowid = ?", (message_id,)
        ).fetchone()
        if row is None:
            raise UnknownMessage(f"there is no message {message_id} in this conversation")
        found = _message(row)
        if author is not None and str(found.author).lower() != author:
            raise NotYourMessage("only its author can change a message")
        return found

    def search(self, match: str, before_id: int | None, limit: int) -> Page:
        """Messages matching the FTS5 expression ``match`` (``search_index.match_expression``),
        newest first, older than ``before_id``; ``has_more``: older matches exist.

        The first search of a file that predates the index builds it.
        """

        def work(conn: sqlite3.Connection) -> Page:
            if not self._searchable:
                if not search_index.exists(conn):
                    with immediate(conn):
                        if not search_index.exists(conn):
                            search_index.create(conn)
                self._searchable = True
            with snapshot(conn):
                rev = _revision(conn)
                ids = [
                    row[0]
                    for row in conn.execute(
                        search_index.SEARCH_SQL,
                        {
                            "match": match,
                            "before": _MAX_ID if before_id is None else before_id,
                            "fetch": limit + 1,
                        },
                    )
                ]
                shown = ids[:limit]
                marks = ",".join("?" * len(shown))
                rows = conn.execute(
                    f"SELECT {_COLUMNS} FROM conversation WHERE rowid IN ({marks}) "
                    "ORDER BY rowid DESC",
                    shown,
                ).fetchall()
                messages = _with_extras(conn, [_message(row) for row in rows])
            return Page(messages, len(ids) > limit, rev)

        page: Page = self._run(work)
        return page

    def has_client_id(self, author: str, client_id: str) -> bool:
        """Whether ``author`` already stored a message under ``client_id`` (a retry)."""
        row = self._run(
            lambda conn: conn.execute(
                "SELECT 1 FROM conversation WHERE author = ? AND client_id = ?",
                (author, client_id),
            ).fetchone()
        )
        return row is not None

    # -- files ------------------------------------------------------------------------
    def attachment(self, message_id: int) -> Attachment:
        """A message's file (``UnknownMessage``: no such message; ``NoAttachment``: no file)."""

        def work(conn: sqlite3.Connection) -> Attachment:
            if not _exists(conn, message_id):
                raise UnknownMessage(f"there is no message {message_id} in this conversation")
            found = attachments.find(conn, message_id)
            if found is None:
                raise NoAttachment(f"message {message_id} carries no file")
            return found

        found: Attachment = self._run(work)
        return found

    def file_chunks(
        self, message_id: int, start: int = 0, end: int | None = None
    ) -> Iterator[bytes]:
        """A file's bytes from ``start`` to ``end`` (inclusive; None: its last), one stored
        chunk per step, each read on its own under the lock (a slow reader never holds
        the pair's file). A file deleted meanwhile ends early with ``NoAttachment``, so a
        reply cut short is never taken for the whole file."""
        seq, skip = 0, 0
        if start > 0:
            found = self._run(lambda conn: attachments.locate(conn, message_id, start))
            if found is None:
                return
            seq, skip = found
        left = None if end is None else end - start + 1
        while left is None or left > 0:
            data: bytes | None = self._run(
                lambda conn, seq=seq: attachments.chunk(conn, message_id, seq)
            )
            if data is None:
                if self._run(lambda conn: attachments.find(conn, message_id)) is None:
                    raise NoAttachment(f"message {message_id}'s file was deleted")
                return
            if skip:
                data, skip = data[skip:], 0
            if left is not None:
                data = data[:left]
                left -= len(data)
            yield data
            seq += 1

    def files(self) -> list[FileEntry]:
        """Every file of the pair, newest first."""
        found: list[FileEntry] = self._run(attachments.entries)
        return [entry._replace(date_sent=_date(entry.date_sent)) for entry in found]

    def charged_bytes(self) -> dict[str, int]:
        """Bytes of the pair's files per user they were charged to."""
        found: dict[str, int] = self._run(attachments.charged_bytes)
        return found

    def settle_charges(self, accounts: Collection[str]) -> tuple[dict[str, int], int]:
        """``pairchat-server recount-files``: files charged to a name with no account in
        ``accounts`` become nobody's (``attachments.settle_charges``), then
        ``charged_bytes``; and how many were settled. One transaction."""

        def work(conn: sqlite3.Connection) -> tuple[dict[str, int], int]:
            with immediate(conn):
                settled = attachments.settle_charges(conn, accounts)
                return attachments.charged_bytes(conn), settled

        found: tuple[dict[str, int], int] = self._run(work)
        return found

    def last_message(self) -> Message | None:
        rows = self.page(limit=1).messages
        return rows[0] if rows else None

    def last_id(self) -> int:
        last = self.last_message()
        return 0 if last is None else last.id

    def count_from(self, author: str, after_id: int) -> int:
        """Messages by ``author`` (any case, as seed files may hold it) newer than ``after_id``,
        deleted ones left out."""

        def work(conn: sqlite3.Connection) -> int:
            row = conn.execute(
                "SELECT count(*) FROM conversation WHERE rowid > ? AND lower(author) = ? "
                "AND NOT deleted",
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
