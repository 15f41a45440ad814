"""A file message is a file everywhere: the friend list's ``last_message`` carries its
file and reactions as a history page does (through send, reaction, edit and delete, and
after the accounts file or database upgrades), and search finds a file by its name
(also in a pair file whose index was made before names were indexed)."""

from __future__ import annotations

import io
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest

from backend.storage import search_index
from backend.storage.accounts import LastMessage, open_account_store
from backend.storage.accounts_schema import ACCOUNTS_FILE
from backend.storage.attachments import Attachment, Upload
from backend.storage.conversation import MIGRATIONS, Conversation
from backend.storage.database import connect, migrate
from tests.people import JSON, Person, meet
from tests.pg_server import postgres_server, postgres_url  # noqa: F401
from tests.support import LiveServer, Server, bearer, http

Start = Callable[..., LiveServer]
NEW_COLUMNS = ("last_file_name", "last_file_size", "last_file_type", "last_reactions")


def send_file(person: Person, to: str, name: str, content: bytes, **fields: Any) -> JSON:
    reply = http.post(
        f"{person.server.url}/send_file/{to}",
        data={"author": person.name, **fields},
        files={"file": (name, content, "application/pdf")},
        headers=bearer(person.token),
    )
    assert reply.status_code == 200, reply.text
    sent: JSON = reply.json()
    return sent


def newest_everywhere(p: dict[str, Person]) -> JSON:
    """The pair's newest message as both friend lists give it, checked against a history page
    (the one wire shape, every key)."""
    (alice_sees,) = p["alice"].friends()["friends"]
    (bob_sees,) = p["bob"].friends()["friends"]
    newest = p["bob"].history("alice", limit=1)["history"][-1]
    assert alice_sees["last_message"] == bob_sees["last_message"] == newest
    last: JSON = bob_sees["last_message"]
    return last


@pytest.mark.both_tiers
def test_the_friend_list_shows_a_file_as_the_newest_message_through_its_changes(
    server: Server,
) -> None:
    p = meet(server, "alice", "bob")
    p["alice"].send("bob", "here it comes")
    sent = send_file(p["alice"], "bob", "report.pdf", b"%PDF-1.7 q3", client_id="f-1")
    last = newest_everywhere(p)
    assert (last["id"], last["message"], last["client_id"]) == (sent["id"], "", "f-1")
    assert last["attachment"] == {"name": "report.pdf", "size": 11, "type": "application/pdf"}
    p["bob"].react("alice", sent["id"], "👍")
    assert newest_everywhere(p)["reactions"] == {"👍": ["bob"]}
    p["alice"].edit("bob", sent["id"], "the q3 numbers")
    last = newest_everywhere(p)
    assert last["message"] == "the q3 numbers" and last["attachment"]["name"] == "report.pdf"
    assert last["reactions"] == {"👍": ["bob"]}
    p["alice"].delete("bob", sent["id"])
    last = newest_everywhere(p)
    assert (last["deleted"], last["attachment"], last["reactions"]) == (True, None, {})
    send_file(p["bob"], "alice", "reply.pdf", b"back")
    p["alice"].send("bob", "thanks")  # a text after a file: no file kept from before
    assert newest_everywhere(p)["attachment"] is None


@pytest.mark.both_tiers
def test_a_file_is_found_by_its_name(server: Server) -> None:
    p = meet(server, "alice", "bob")
    p["alice"].send("bob", "a report about nothing")
    bare = send_file(p["alice"], "bob", "Quarterly-Résumé.pdf", b"one")
    captioned = send_file(p["bob"], "alice", "report.pdf", b"two", message="for q3")

    def found(q: str) -> list[int]:
        return [m["id"] for m in p["bob"].search("alice", q)["results"]]

    assert found("resume") == [bare["id"]], "a name alone, accents ignored"
    assert found("quarterly pdf") == [bare["id"]]
    assert found("report q3") == [captioned["id"]], "a name and a caption together"
    (result,) = p["alice"].search("bob", "quarterly")["results"]
    assert result["attachment"]["name"] == "Quarterly-Résumé.pdf"
    p["bob"].edit("alice", captioned["id"], "for q4")
    assert found("report q4") == [captioned["id"]] and found("q3") == []
    p["alice"].delete("bob", bare["id"])
    assert found("quarterly") == [], "a deleted file's name is gone from the index"
    assert len(found("report")) == 2


# The index versions 2-4 made: the message's text only (copied from that code).
_TEXT_ONLY_INDEX = (
    "CREATE VIRTUAL TABLE IF NOT EXISTS conversation_fts USING fts5(message, "
    "content='conversation', content_rowid='rowid', tokenize='unicode61 remove_diacritics 2')",
    "CREATE TRIGGER IF NOT EXISTS conversation_fts_insert AFTER INSERT ON conversation BEGIN "
    "INSERT INTO conversation_fts(rowid, message) VALUES (new.rowid, new.message); END",
    "CREATE TRIGGER IF NOT EXISTS conversation_fts_update AFTER UPDATE OF message "
    "ON conversation BEGIN "
    "INSERT INTO conversation_fts(conversation_fts, rowid, message) "
    "VALUES ('delete', old.rowid, old.message); "
    "INSERT INTO conversation_fts(rowid, message) VALUES (new.rowid, new.message); END",
    "CREATE TRIGGER IF NOT EXISTS conversation_fts_delete AFTER DELETE ON conversation BEGIN "
    "INSERT INTO conversation_fts(conversation_fts, rowid, message) "
    "VALUES ('delete', old.rowid, old.message); END",
)


def version_4_file(path: Path, *, with_file: bool) -> None:
    """A pair file as version 4 left it: the text-only index (version 2 made it in a new
    file; this code's version 2 no longer does), and a file sent with no text."""
    conn = connect(path, create=True)
    migrate(conn, MIGRATIONS[:4])
    for statement in _TEXT_ONLY_INDEX:
        conn.execute(statement)
    if with_file:
        conn.execute(
            "INSERT INTO conversation (author, message, date_sent) VALUES ('bob', 'hi', 1)"
        )
        conn.execute(
            "INSERT INTO conversation (author, message, date_sent) VALUES ('alice', '', 2)"
        )
        conn.execute("INSERT INTO attachment VALUES (2, 'report.pdf', 3, 'application/pdf')")
        conn.execute("INSERT INTO attachment_chunk VALUES (2, 0, x'616263')")
    conn.commit()
    conn.close()


def test_a_version_4_file_finds_its_files_by_name_once_upgraded(tmp_path: Path) -> None:
    path = tmp_path / "alice_bob.db"
    version_4_file(path, with_file=True)
    conversation = Conversation(path)
    match = search_index.match_expression(["report"])
    assert [m.id for m in conversation.search(match, None, 10).messages] == [2]
    sent = conversation.add_message(
        "bob", "", 3, upload=Upload("report v2.txt", "text/plain", 1, io.BytesIO(b"x").read)
    )
    assert [m.id for m in conversation.search(match, None, 10).messages] == [sent.id, 2]
    conversation.delete_message(2, "alice")
    assert [m.id for m in conversation.search(match, None, 10).messages] == [sent.id]
    conversation.close()
    with sqlite3.connect(path) as conn:
        search_index.check(conn)  # the index agrees with the rows (FTS5's own check)


def test_an_empty_version_4_file_gets_the_new_index_at_once(tmp_path: Path) -> None:
    path = tmp_path / "alice_bob.db"
    version_4_file(path, with_file=False)
    conversation = Conversation(path)
    conversation.add_message(
        "bob", "", 1, upload=Upload("notes.md", "text/markdown", 2, io.BytesIO(b"hi").read)
    )
    found = conversation.search(search_index.match_expression(["notes"]), None, 10)
    assert [m.attachment for m in found.messages] == [Attachment("notes.md", 2, "text/markdown")]
    conversation.close()
    with sqlite3.connect(path) as conn:
        views = conn.execute("SELECT name FROM sqlite_master WHERE type = 'view'").fetchall()
        assert views == [("conversation_search",)], "made on opening, kept current since"
        search_index.check(conn)


def test_an_accounts_file_from_version_7_shows_the_file_of_a_newest_message(
    live_server: Start, tmp_path: Path
) -> None:
    folder = tmp_path / "data"
    server = live_server(data_dir=folder)
    p = meet(server, "alice", "bob")
    sent = send_file(p["alice"], "bob", "report.pdf", b"%PDF")
    p["bob"].react("alice", sent["id"], "🎉")
    server.stop()
    conn = sqlite3.connect(folder / ACCOUNTS_FILE)  # back to what version 7 kept
    columns = {row[1] for row in conn.execute("PRAGMA table_info(contacts)")}
    for column in columns.intersection((*NEW_COLUMNS, "last_complete")):
        conn.execute(f"ALTER TABLE contacts DROP COLUMN {column}")
    conn.execute("PRAGMA user_version = 7")
    conn.commit()
    conn.close()
    again = live_server(data_dir=folder)
    p = {name: Person(again, name, person.token) for name, person in p.items()}
    last = newest_everywhere(p)
    assert last["attachment"] == {"name": "report.pdf", "size": 4, "type": "application/pdf"}
    assert last["reactions"] == {"🎉": ["bob"]}
    with sqlite3.connect(folder / ACCOUNTS_FILE) as conn:  # remembered: read once
        kept = conn.execute(
            "SELECT owner, last_author, last_file_name, last_reactions FROM contacts ORDER BY owner"
        ).fetchall()
    assert kept == [
        ("alice", "alice", "report.pdf", '{"🎉": ["bob"]}'),
        ("bob", "alice", "report.pdf", '{"🎉": ["bob"]}'),
    ]


@pytest.mark.live
def test_a_postgres_feed_from_version_7_gains_the_new_columns_and_keeps_its_rows(
    postgres_url: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    """A node cannot read every pair's file: rows from before version 8 are taken as they
    are (no pair file read for them); the pair's next change brings its file along."""
    store = open_account_store(tmp_path, database_url=postgres_url)
    for name in ("alice", "bob"):
        assert store.add_user(name, None, f"hash-{name}", 1000)
    store.record_message("alice", "bob", LastMessage(1, "alice", "hello", 2001, None, 1))
    store.close()
    with psycopg.connect(postgres_url, autocommit=True) as conn:  # back to version 7
        for column in (*NEW_COLUMNS, "last_complete"):
            conn.execute(f"ALTER TABLE contacts DROP COLUMN IF EXISTS {column}")
        conn.execute("UPDATE schema_version SET version = 7")
    store = open_account_store(tmp_path, database_url=postgres_url)
    try:
        (row,) = store.friend_list("bob")[0]
        assert row.last_message is not None and row.last_message.message == "hello"
        assert row.last_complete, "taken as it is"
        with psycopg.connect(postgres_url) as conn:
            default = conn.execute(
                "SELECT column_default FROM information_schema.columns "
                "WHERE table_name = 'contacts' AND column_name = 'last_complete'"
            ).fetchone()
        assert default == ("0",), "rows made from now on say what they hold, as on SQLite"
        file = Attachment("report.pdf", 4, "application/pdf")
        reactions = {"👍": ["bob"]}
        store.record_message(
            "alice", "bob", LastMessage(2, "alice", "", 2002, None, 2, attachment=file)
        )
        store.record_revision(
            "alice",
            "bob",
            LastMessage(2, "alice", "", 2002, None, 3, attachment=file, reactions=reactions),
        )
        for owner in ("alice", "bob"):
            (row,) = store.friend_list(owner)[0]
            assert row.last_message is not None and row.last_complete
            assert (row.last_message.attachment, row.last_message.reactions) == (file, reactions)
    finally:
        store.close()
