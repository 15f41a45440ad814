"""Unit: files of the previous version open in place and keep meaning what they meant.

An accounts file at version 2 (before the conversation features): its conversations
stay accepted (no old chat turns into a request), each pair's revision is its newest
id (what its pair file gets on upgrade), and each side's read marker is mirrored onto
the other's row for read receipts.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from backend.core.usernames import Username
from backend.services.wiring import build_services
from backend.storage import accounts as storage
from tests.support import settings_for


def version_2_file(folder: Path) -> None:
    folder.mkdir()
    conn = sqlite3.connect(folder / storage.ACCOUNTS_FILE, isolation_level=None)
    conn.execute("BEGIN")
    storage.MIGRATIONS[0](conn)
    storage.MIGRATIONS[1](conn)  # as the previous release left it
    conn.execute("PRAGMA user_version = 2")
    conn.execute("COMMIT")
    for name in ("alice", "mallory"):
        conn.execute(
            "INSERT INTO users (username, password_hash, created_at) VALUES (?, 'x', 0)", (name,)
        )
    # mallory wrote twice to alice, who never added her nor wrote back; alice read one
    conn.execute(
        "INSERT INTO contacts (owner, peer, last_id, last_activity, unread, read_marker, seq, "
        "last_author, last_text) VALUES "
        "('alice', 'mallory', 2, 1700000000, 1, 1, 1, 'mallory', 'two'), "
        "('mallory', 'alice', 2, 1700000000, 0, 0, 1, 'mallory', 'two')"
    )
    conn.close()


def test_a_version_2_accounts_file_is_upgraded_without_new_requests(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    version_2_file(folder)
    with build_services(settings_for(folder, watch_interval=0)) as built:
        friends = built.chat.friends(Username("alice"))
        assert [f.username for f in friends.listed] == ["mallory"] and friends.requests == []
        (mallory,) = friends.listed
        assert (mallory.unread, mallory.rev) == (1, 2)
        assert mallory.last_message is not None and mallory.last_message.rev == 2
        (seen_by_mallory,) = built.chat.friends(Username("mallory")).listed
        assert seen_by_mallory.peer_read_up_to == 1, "alice's marker, mirrored"
        assert built.account_store.privacy("alice") == storage.Privacy(True, True)
    conn = sqlite3.connect(folder / storage.ACCOUNTS_FILE)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == len(storage.MIGRATIONS)
    conn.close()


def test_a_file_made_at_version_2_before_its_last_columns_is_repaired(tmp_path: Path) -> None:
    """Version 2 grew its last_* columns after some files were made with it."""
    folder = tmp_path / "data"
    folder.mkdir()
    conn = sqlite3.connect(folder / storage.ACCOUNTS_FILE, isolation_level=None)
    conn.execute("BEGIN")
    storage.MIGRATIONS[0](conn)
    conn.execute("ALTER TABLE users ADD COLUMN deleted_at INTEGER")
    conn.execute("ALTER TABLE users ADD COLUMN display_key TEXT")
    conn.execute("ALTER TABLE tokens ADD COLUMN last_used INTEGER")
    conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)")
    conn.execute("INSERT INTO meta VALUES ('account_epoch', 0)")
    conn.execute(
        "CREATE TABLE invites (code_hash TEXT PRIMARY KEY, created_at INTEGER NOT NULL, "
        "expires_at INTEGER, used_by TEXT, used_at INTEGER)"
    )
    conn.execute("PRAGMA user_version = 2")
    conn.execute("COMMIT")
    conn.close()
    with build_services(settings_for(folder, watch_interval=0)) as built:
        built.accounts.register(Username("alice"), "correct horse")
        built.accounts.register(Username("bob"), "correct horse")
        built.chat.send(Username("alice"), Username("bob"), "hello")
        assert [f.username for f in built.chat.friends(Username("bob")).requests] == ["alice"]
