"""Whole-history search inside a pair's own file: an SQLite FTS5 index of each message's
text and the name of its file.

The index is an *external content* FTS5 table (``conversation_fts``) with two
columns, ``message`` and ``file_name``: it keeps only the index, reading the
values from a view (``conversation_search``: each message's text beside its
attachment's name, or NULL) by rowid, so the file grows by the index alone.
Triggers keep it current: a new message is indexed, an edit re-indexes it, a
file stored with a message adds its name, and a deletion (its text becomes
``""`` and its file goes) leaves no tokens behind, so a deleted message never
matches. A query's words may match in either column (``report q3`` finds the
file ``report.pdf`` captioned "for q3").

A new (empty) file gets the index when it is created; a file that already holds
messages (made by the original server, or by pairchat before search existed)
gets it on its first search, built in one transaction from the view
(``'rebuild'``). Whether a file has it is read from ``sqlite_master``: it is not
a schema version, since old files may lack it for good if nobody ever searches.
Schema version 5 of ``backend/storage/conversation.py`` (``upgrade``) drops the
text-only index of versions 2-4, so the next search builds this one, indexing
the names of the files already there.

Queries are built here from plain words (``match_expression``): every word is
quoted for FTS5, so no user input is ever read as FTS5 syntax, and each is a
prefix (``"hel"*`` finds "hello"). Matching is case- and accent-insensitive
(the ``unicode61`` tokenizer with ``remove_diacritics 2``); words are runs of
letters and digits, so punctuation alone matches nothing (``report.pdf`` is the
words ``report`` and ``pdf``).
"""

from __future__ import annotations

import re
import sqlite3

TABLE = "conversation_fts"
VIEW = "conversation_search"
MAX_TERMS = 16
_WORD = re.compile(r"[^\W_]+")  # letters and digits, as unicode61 splits them

_NAME_OF = "(SELECT name FROM attachment WHERE message_id = {}.rowid)"
"""The indexed file name of a message row (``old`` or ``new``): its attachment's, or NULL."""


def _index(row: str, name: str) -> str:
    """Statements adding the message ``row`` with the file name ``name`` to the index."""
    return (
        f"INSERT INTO {TABLE}(rowid, message, file_name) "
        f"SELECT rowid, message, {name} FROM conversation WHERE rowid = {row};"
    )


def _unindex(row: str, name: str) -> str:
    """Statements removing the message ``row`` as indexed with ``name`` (FTS5 needs the
    values it indexed: the message's text, unchanged by the statement that fires this)."""
    return (
        f"INSERT INTO {TABLE}({TABLE}, rowid, message, file_name) "
        f"SELECT 'delete', rowid, message, {name} FROM conversation WHERE rowid = {row};"
    )


_SCHEMA = (
    f"CREATE VIEW {VIEW} (id, message, file_name) AS SELECT c.rowid, c.message, a.name "
    "FROM conversation c LEFT JOIN attachment a ON a.message_id = c.rowid",
    f"CREATE VIRTUAL TABLE {TABLE} USING fts5(message, file_name, content='{VIEW}', "
    "content_rowid='id', tokenize='unicode61 remove_diacritics 2')",
    # A message's own row: its text, with whatever file it has (none yet, as a rule:
    # a file is stored just after its message, and its trigger adds the name).
    f"CREATE TRIGGER {TABLE}_insert AFTER INSERT ON conversation BEGIN "
    f"INSERT INTO {TABLE}(rowid, message, file_name) "
    f"VALUES (new.rowid, new.message, {_NAME_OF.format('new')}); END",
    f"CREATE TRIGGER {TABLE}_update AFTER UPDATE OF message ON conversation BEGIN "
    f"INSERT INTO {TABLE}({TABLE}, rowid, message, file_name) "
    f"VALUES ('delete', old.rowid, old.message, {_NAME_OF.format('old')}); "
    f"INSERT INTO {TABLE}(rowid, message, file_name) "
    f"VALUES (new.rowid, new.message, {_NAME_OF.format('new')}); END",
    f"CREATE TRIGGER {TABLE}_delete AFTER DELETE ON conversation BEGIN "
    f"INSERT INTO {TABLE}({TABLE}, rowid, message, file_name) "
    f"VALUES ('delete', old.rowid, old.message, {_NAME_OF.format('old')}); END",
    # A message's file: its name joins (or leaves) the message's entry.
    f"CREATE TRIGGER {TABLE}_file_insert AFTER INSERT ON attachment BEGIN "
    + _unindex("new.message_id", "NULL")
    + _index("new.message_id", "new.name")
    + " END",
    f"CREATE TRIGGER {TABLE}_file_update AFTER UPDATE OF name ON attachment BEGIN "
    + _unindex("old.message_id", "old.name")
    + _index("new.message_id", "new.name")
    + " END",
    f"CREATE TRIGGER {TABLE}_file_delete AFTER DELETE ON attachment BEGIN "
    + _unindex("old.message_id", "old.name")
    + _index("old.message_id", "NULL")
    + " END",
)

_OLD_TRIGGERS = ("insert", "update", "delete")
"""The triggers of the text-only index (versions 2-4), dropped with it."""


def exists(conn: sqlite3.Connection) -> bool:
    row = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (TABLE,)
    ).fetchone()
    return row is not None


def create(conn: sqlite3.Connection) -> None:
    """Create the index and its triggers and index every row (inside the caller's transaction)."""
    for statement in _SCHEMA:
        conn.execute(statement)
    conn.execute(f"INSERT INTO {TABLE}({TABLE}) VALUES ('rebuild')")


def upgrade(conn: sqlite3.Connection) -> None:
    """Schema version 5: the index covers file names. A text-only index (versions 2-4)
    is dropped (the next search builds this one from the rows, as for a file that never
    had one); an empty file gets the index now, as a new file does."""
    view = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'view' AND name = ?", (VIEW,)
    ).fetchone()
    if view is None:
        for name in _OLD_TRIGGERS:
            conn.execute(f"DROP TRIGGER IF EXISTS {TABLE}_{name}")
        conn.execute(f"DROP TABLE IF EXISTS {TABLE}")
    empty = conn.execute("SELECT 1 FROM conversation LIMIT 1").fetchone() is None
    if empty and not exists(conn):
        create(conn)


def check(conn: sqlite3.Connection) -> None:
    """FTS5's own check of the index against the rows (``sqlite3.DatabaseError`` when
    they differ): for tests and ``integrity_check``-like tools."""
    conn.execute(f"INSERT INTO {TABLE}({TABLE}) VALUES ('integrity-check')")


def words(query: str) -> list[str]:
    """The words of a plain-text query, as the index splits text."""
    return _WORD.findall(query)


def match_expression(terms: list[str]) -> str:
    """An FTS5 query where every term must match, each as a quoted prefix."""
    return " ".join('"' + term.replace('"', '""') + '"*' for term in terms)


SEARCH_SQL = (
    f"SELECT rowid FROM {TABLE} WHERE {TABLE} MATCH :match AND rowid < :before "
    "ORDER BY rowid DESC LIMIT :fetch"
)
"""Matching rowids older than ``:before``, newest first: FTS5 walks its doclists from
the newest end, so a match far back costs what the matches on the way cost."""
