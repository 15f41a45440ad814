"""Whole-history search inside a pair's own file: an SQLite FTS5 index of ``message``.

The index is an *external content* FTS5 table (``conversation_fts``): it keeps
only the index, reading the text itself from ``conversation`` by rowid, so the
file grows by the index alone. Three triggers keep it current: a new message is
indexed, an edit re-indexes it, and a deletion (its text becomes ``""``) leaves
no tokens behind, so a deleted message never matches.

A new (empty) file gets the index when it is created; a file that already holds
messages (made by the original server, or by pairchat before search existed)
gets it on its first search, built in one transaction from the rows
(``'rebuild'``). Whether a file has it is read from ``sqlite_master``: it is not
a schema version, since old files may lack it for good if nobody ever searches.

Queries are built here from plain words (``match_expression``): every word is
quoted for FTS5, so no user input is ever read as FTS5 syntax, and each is a
prefix (``"hel"*`` finds "hello"). Matching is case- and accent-insensitive
(the ``unicode61`` tokenizer with ``remove_diacritics 2``); words are runs of
letters and digits, so punctuation alone matches nothing.
"""

from __future__ import annotations

import re
import sqlite3

TABLE = "conversation_fts"
MAX_TERMS = 16
_WORD = re.compile(r"[^\W_]+")  # letters and digits, as unicode61 splits them

_SCHEMA = (
    f"CREATE VIRTUAL TABLE {TABLE} USING fts5(message, content='conversation', "
    "content_rowid='rowid', tokenize='unicode61 remove_diacritics 2')",
    f"CREATE TRIGGER {TABLE}_insert AFTER INSERT ON conversation BEGIN "
    f"INSERT INTO {TABLE}(rowid, message) VALUES (new.rowid, new.message); END",
    f"CREATE TRIGGER {TABLE}_update AFTER UPDATE OF message ON conversation BEGIN "
    f"INSERT INTO {TABLE}({TABLE}, rowid, message) VALUES ('delete', old.rowid, old.message); "
    f"INSERT INTO {TABLE}(rowid, message) VALUES (new.rowid, new.message); END",
    f"CREATE TRIGGER {TABLE}_delete AFTER DELETE ON conversation BEGIN "
    f"INSERT INTO {TABLE}({TABLE}, rowid, message) VALUES ('delete', old.rowid, old.message); "
    "END",
)


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
