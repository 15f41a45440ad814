"""The accounts database's schema on PostgreSQL (multi-node mode), made in one go.

The same tables and columns as the SQLite file at its latest version
(``backend/storage/accounts_schema.py``; what each holds is said in
``backend/storage/accounts.py``), created at once rather than replayed step by
step, in one transaction under an advisory lock, so nodes that start together
create it once. The version is the ``schema_version`` row; a later version adds a
step here that brings a database from the previous one.

Differences that keep one set of statements for both engines: flags stay
integers (0/1; the statements compare them, ``flag = 0``, never ``NOT flag``),
times and counters are ``BIGINT`` (typing deadlines are milliseconds), and names
compare and sort bytewise (``COLLATE "C"``), as in SQLite, whatever the
database's locale.

Version 8 (each pair's newest message keeps its file and reactions): rows from before
it get ``last_complete`` 1, not SQLite's 0. A node cannot read every pair's file (it
serves its own), so they are taken as they are, and such a pair's preview gains its
file and reactions with the pair's next change. The column is added with a default of
1, which PostgreSQL gives existing rows without rewriting the table, then set to 0.
"""

from __future__ import annotations

from typing import Any

import psycopg

from backend.core.usernames import display_key

SCHEMA_VERSION = 8
"""The SQLite file's version this schema matches (``len(MIGRATIONS)``)."""
_LOCK = 0x70616972  # "pair": the advisory lock nodes take while making the schema

_NAME = 'TEXT COLLATE "C"'
_TABLES = f"""
CREATE TABLE IF NOT EXISTS schema_version (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS users (
    username {_NAME} PRIMARY KEY,
    display_name TEXT,
    password_hash TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    deleted_at BIGINT,
    display_key {_NAME},
    read_receipts INTEGER NOT NULL DEFAULT 1,
    typing INTEGER NOT NULL DEFAULT 1,
    files_bytes BIGINT NOT NULL DEFAULT 0
);
ALTER TABLE users ADD COLUMN IF NOT EXISTS files_bytes BIGINT NOT NULL DEFAULT 0;
CREATE INDEX IF NOT EXISTS users_display_key ON users (display_key)
    WHERE display_key IS NOT NULL;
CREATE TABLE IF NOT EXISTS tokens (
    token_hash {_NAME} PRIMARY KEY,
    username {_NAME} NOT NULL REFERENCES users(username) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    last_used BIGINT,
    via_key {_NAME},
    token_id {_NAME},
    name TEXT,
    scopes TEXT,
    expires_at BIGINT
);
ALTER TABLE tokens ADD COLUMN IF NOT EXISTS token_id {_NAME};
ALTER TABLE tokens ADD COLUMN IF NOT EXISTS name TEXT;
ALTER TABLE tokens ADD COLUMN IF NOT EXISTS scopes TEXT;
ALTER TABLE tokens ADD COLUMN IF NOT EXISTS expires_at BIGINT;
CREATE UNIQUE INDEX IF NOT EXISTS tokens_token_id ON tokens (token_id)
    WHERE token_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS tokens_user ON tokens (username);
CREATE INDEX IF NOT EXISTS tokens_via_key ON tokens (via_key) WHERE via_key IS NOT NULL;
CREATE TABLE IF NOT EXISTS contacts (
    owner {_NAME} NOT NULL,
    peer {_NAME} NOT NULL,
    added INTEGER NOT NULL DEFAULT 0,
    blocked INTEGER NOT NULL DEFAULT 0,
    hidden INTEGER NOT NULL DEFAULT 0,
    last_id BIGINT NOT NULL DEFAULT 0,
    last_activity BIGINT,
    unread BIGINT NOT NULL DEFAULT 0,
    read_marker BIGINT NOT NULL DEFAULT 0,
    seq BIGINT NOT NULL DEFAULT 0,
    last_author {_NAME},
    last_client_id TEXT,
    last_text TEXT,
    rev BIGINT NOT NULL DEFAULT 0,
    peer_read BIGINT NOT NULL DEFAULT 0,
    typing_until BIGINT,
    accepted INTEGER NOT NULL DEFAULT 0,
    last_rev BIGINT,
    last_edited_at BIGINT,
    last_deleted INTEGER NOT NULL DEFAULT 0,
    last_reply_to BIGINT,
    last_file_name TEXT,
    last_file_size BIGINT,
    last_file_type TEXT,
    last_reactions TEXT,
    last_complete INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (owner, peer)
);
ALTER TABLE contacts ADD COLUMN IF NOT EXISTS last_file_name TEXT;
ALTER TABLE contacts ADD COLUMN IF NOT EXISTS last_file_size BIGINT;
ALTER TABLE contacts ADD COLUMN IF NOT EXISTS last_file_type TEXT;
ALTER TABLE contacts ADD COLUMN IF NOT EXISTS last_reactions TEXT;
ALTER TABLE contacts ADD COLUMN IF NOT EXISTS last_complete INTEGER NOT NULL DEFAULT 1;
ALTER TABLE contacts ALTER COLUMN last_complete SET DEFAULT 0;
CREATE INDEX IF NOT EXISTS contacts_feed ON contacts (owner, seq);
CREATE INDEX IF NOT EXISTS contacts_seq ON contacts (seq);
CREATE TABLE IF NOT EXISTS feed_counter (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seq BIGINT NOT NULL
);
INSERT INTO feed_counter (id, seq) VALUES (1, 0) ON CONFLICT DO NOTHING;
CREATE TABLE IF NOT EXISTS invites (
    code_hash {_NAME} PRIMARY KEY,
    created_at BIGINT NOT NULL,
    expires_at BIGINT,
    used_by {_NAME},
    used_at BIGINT
);
CREATE TABLE IF NOT EXISTS meta (key {_NAME} PRIMARY KEY, value BIGINT NOT NULL);
INSERT INTO meta (key, value) VALUES ('account_epoch', 0) ON CONFLICT DO NOTHING;
CREATE TABLE IF NOT EXISTS ssh_keys (
    fingerprint {_NAME} PRIMARY KEY,
    username {_NAME} NOT NULL REFERENCES users(username),
    key TEXT NOT NULL,
    comment TEXT NOT NULL DEFAULT '',
    added BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS ssh_keys_user ON ssh_keys (username);
CREATE TABLE IF NOT EXISTS door_tickets (
    ticket_hash {_NAME} PRIMARY KEY,
    fingerprint {_NAME} NOT NULL,
    key TEXT NOT NULL,
    comment TEXT NOT NULL DEFAULT '',
    expires_at BIGINT NOT NULL,
    tries INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS link_codes (
    code_hash {_NAME} PRIMARY KEY,
    username {_NAME} NOT NULL REFERENCES users(username),
    expires_at BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS link_codes_user ON link_codes (username)
"""


class SchemaTooNew(RuntimeError):
    """The database was made by a newer pairchat: this one must not write to it."""


def ensure_schema(conn: psycopg.Connection[Any]) -> int:
    """Create the tables if they are missing (one transaction); returns the version."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK,))
        exists = conn.execute("SELECT to_regclass('schema_version') IS NOT NULL").fetchone()
        row = None
        if exists and exists[0]:
            row = conn.execute("SELECT version FROM schema_version WHERE id = 1").fetchone()
        version = 0 if row is None else int(row[0])
        if version > SCHEMA_VERSION:
            raise SchemaTooNew(
                f"the accounts database is at version {version}; this pairchat knows "
                f"{SCHEMA_VERSION}: upgrade pairchat on this node"
            )
        if version < SCHEMA_VERSION:
            for statement in _TABLES.split(";"):
                conn.execute(statement.encode())
            if 0 < version < 5:  # display keys became confusable skeletons: recompute
                rows = conn.execute(
                    "SELECT username, display_name FROM users WHERE display_name IS NOT NULL"
                ).fetchall()
                for username, shown in rows:
                    conn.execute(
                        "UPDATE users SET display_key = %s WHERE username = %s",
                        (display_key(shown), username),
                    )
            conn.execute(
                "INSERT INTO schema_version (id, version) VALUES (1, %s) "
                "ON CONFLICT (id) DO UPDATE SET version = excluded.version",
                (SCHEMA_VERSION,),
            )
    return SCHEMA_VERSION
