"""The accounts file's schema and its versions (``PRAGMA user_version``).

Append a function to ``MIGRATIONS`` for a new version; never edit or reorder the
existing ones (docs/architecture.md). Each runs inside the migration's
``BEGIN IMMEDIATE`` transaction, one statement at a time (``executescript`` would
commit it), and guards against a file that is already half-way. What each
version holds is said in ``backend/storage/accounts.py``.
"""

from __future__ import annotations

import sqlite3

from backend.core.usernames import display_key

ACCOUNTS_FILE = "_accounts.sqlite3"


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


def _v3(conn: sqlite3.Connection) -> None:
    columns = {row[1] for row in conn.execute("PRAGMA table_info(contacts)")}
    for column, kind in (
        # version 2's last columns first: files exist that were made at version 2
        # before those columns joined it
        ("last_author", "TEXT"),
        ("last_client_id", "TEXT"),
        ("last_text", "TEXT"),
        ("rev", "INTEGER NOT NULL DEFAULT 0"),
        ("peer_read", "INTEGER NOT NULL DEFAULT 0"),
        ("typing_until", "INTEGER"),
        ("accepted", "INTEGER NOT NULL DEFAULT 0"),
        ("last_rev", "INTEGER"),
        ("last_edited_at", "INTEGER"),
        ("last_deleted", "INTEGER NOT NULL DEFAULT 0"),
        ("last_reply_to", "INTEGER"),
    ):
        if column not in columns:
            conn.execute(f"ALTER TABLE contacts ADD COLUMN {column} {kind}")
    columns = {row[1] for row in conn.execute("PRAGMA table_info(users)")}
    for column in ("read_receipts", "typing"):
        if column not in columns:
            conn.execute(f"ALTER TABLE users ADD COLUMN {column} INTEGER NOT NULL DEFAULT 1")
    # Conversations from before requests existed stay where they were: accepted.
    # Pair files upgrade with rev = rowid, so a pair's revision is its newest id.
    conn.execute(
        "UPDATE contacts SET accepted = 1, rev = max(rev, last_id), "
        "last_rev = CASE WHEN last_author IS NOT NULL THEN last_id END"
    )
    conn.execute(
        "UPDATE contacts SET peer_read = coalesce((SELECT p.read_marker FROM contacts p "
        "WHERE p.owner = contacts.peer AND p.peer = contacts.owner), 0)"
    )


def _v4_ssh_keys(conn: sqlite3.Connection) -> None:
    """The SSH door's identities: keys (one account per key), one-time tickets for an
    unknown key, one-time link codes, and which key a token was issued through."""
    script = """
        CREATE TABLE IF NOT EXISTS ssh_keys (
            fingerprint TEXT PRIMARY KEY,
            username TEXT NOT NULL REFERENCES users(username),
            key TEXT NOT NULL,
            comment TEXT NOT NULL DEFAULT '',
            added INTEGER NOT NULL
        );
        CREATE INDEX IF NOT EXISTS ssh_keys_user ON ssh_keys (username);
        CREATE TABLE IF NOT EXISTS door_tickets (
            ticket_hash TEXT PRIMARY KEY,
            fingerprint TEXT NOT NULL,
            key TEXT NOT NULL,
            comment TEXT NOT NULL DEFAULT '',
            expires_at INTEGER NOT NULL,
            tries INTEGER NOT NULL DEFAULT 0
        );
        CREATE TABLE IF NOT EXISTS link_codes (
            code_hash TEXT PRIMARY KEY,
            username TEXT NOT NULL REFERENCES users(username),
            expires_at INTEGER NOT NULL
        );
        CREATE INDEX IF NOT EXISTS link_codes_user ON link_codes (username)
        """
    for statement in script.split(";"):
        conn.execute(statement)
    columns = {row[1] for row in conn.execute("PRAGMA table_info(tokens)")}
    if "via_key" not in columns:
        conn.execute("ALTER TABLE tokens ADD COLUMN via_key TEXT")
    conn.execute(
        "CREATE INDEX IF NOT EXISTS tokens_via_key ON tokens (via_key) WHERE via_key IS NOT NULL"
    )


def _v5_name_keys(conn: sqlite3.Connection) -> None:
    """Display keys became confusable skeletons (a Cyrillic a reads as a Latin one): recompute."""
    for username, shown in conn.execute(
        "SELECT username, display_name FROM users WHERE display_name IS NOT NULL"
    ).fetchall():
        conn.execute(
            "UPDATE users SET display_key = ? WHERE username = ?", (display_key(shown), username)
        )


def _v6_script_tokens(conn: sqlite3.Connection) -> None:
    """Tokens made for scripts (``POST /tokens``): a public id, a name, the scopes they
    carry (NULL: a full session token, as every token before), an optional expiry."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(tokens)")}
    for column, kind in (
        ("token_id", "TEXT"),
        ("name", "TEXT"),
        ("scopes", "TEXT"),
        ("expires_at", "INTEGER"),
    ):
        if column not in columns:
            conn.execute(f"ALTER TABLE tokens ADD COLUMN {column} {kind}")
    conn.execute(
        "CREATE UNIQUE INDEX IF NOT EXISTS tokens_token_id ON tokens (token_id) "
        "WHERE token_id IS NOT NULL"
    )


def _v7_files_bytes(conn: sqlite3.Connection) -> None:
    """Bytes of files each user has sent, across all pairs (the per-user files quota)."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(users)")}
    if "files_bytes" not in columns:
        conn.execute("ALTER TABLE users ADD COLUMN files_bytes INTEGER NOT NULL DEFAULT 0")


def _v8_last_file(conn: sqlite3.Connection) -> None:
    """Each pair's newest message keeps its file and reactions on the contact rows too.
    Rows kept before say they lack them (``last_complete`` 0): ``GET /friends`` reads
    such a row's newest message from the pair's file once and fills it in."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(contacts)")}
    for column, kind in (
        ("last_file_name", "TEXT"),
        ("last_file_size", "INTEGER"),
        ("last_file_type", "TEXT"),
        ("last_reactions", "TEXT"),
        ("last_complete", "INTEGER NOT NULL DEFAULT 0"),
    ):
        if column not in columns:
            conn.execute(f"ALTER TABLE contacts ADD COLUMN {column} {kind}")


MIGRATIONS = [
    _v1,
    _v2,
    _v3,
    _v4_ssh_keys,
    _v5_name_keys,
    _v6_script_tokens,
    _v7_files_bytes,
    _v8_last_file,
]
