"""A client written against the seed makes exactly the seed's requests and gets its replies."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.support import Server, bearer, client, http, register

pytestmark = pytest.mark.both_tiers  # in-process (fast tier) and live


def seed_session(url: str, first: str, second: str, headers: dict[str, str] | None = None) -> None:
    """The original client's sequence, form-encoded, with the names as typed."""
    with client(base_url=url, headers=headers or {}) as seed:
        reply = seed.post("/create_conversation_db", data={"user_one": first, "user_two": second})
        assert reply.status_code == 200
        assert reply.json() == {"success": True}
        reply = seed.post("/send_message/" + second, data={"author": first, "message": "Hello!"})
        assert reply.status_code == 200
        assert reply.json()["success"] is True
        reply = seed.post("/get_message_history", data={"user_one": first, "user_two": second})
        assert reply.status_code == 200
        history = reply.json()["history"]
        assert [m["message"] for m in history] == ["Hello!"]
        message = history[0]
        assert {"author", "message", "date_sent", "id"} <= set(message)
        assert message["author"] == first.lower()
        assert isinstance(message["date_sent"], int)


@pytest.mark.parametrize("first,second", [("Alice", "bob"), ("bob", "Alice")])
def test_open_mode_serves_the_seed_client(open_server: Server, first: str, second: str) -> None:
    seed_session(open_server.url, first, second)
    assert sorted(p.name for p in open_server.data_dir.glob("*.db")) == ["alice_bob.db"]


def test_auth_mode_serves_the_seed_client_with_a_token(server: Server) -> None:
    token = register(server.url, "Alice")
    register(server.url, "bob")
    seed_session(server.url, "Alice", "bob", bearer(token))
    assert (server.data_dir / "alice_bob.db").exists()


def test_json_bodies_are_accepted_too(open_server: Server) -> None:
    url = open_server.url
    reply = http.post(f"{url}/send_message/bob", json={"author": "alice", "message": "json"})
    assert reply.status_code == 200
    history = http.post(f"{url}/get_message_history", json={"user_one": "bob", "user_two": "alice"})
    assert [m["message"] for m in history.json()["history"]] == ["json"]


def test_create_is_idempotent_and_history_is_oldest_first(open_server: Server) -> None:
    url = open_server.url
    for _ in range(3):
        reply = http.post(f"{url}/create_conversation_db", data={"user_one": "a", "user_two": "b"})
        assert reply.json() == {"success": True}
    for text in ("one", "two", "three"):
        http.post(f"{url}/send_message/a", data={"author": "b", "message": text})
    history = http.post(f"{url}/get_message_history", data={"user_one": "a", "user_two": "b"})
    messages = history.json()["history"]
    assert [m["message"] for m in messages] == ["one", "two", "three"]
    assert [m["id"] for m in messages] == sorted(m["id"] for m in messages)


def test_read_before_create_is_empty_and_creates_no_file(open_server: Server) -> None:
    url = open_server.url
    reply = http.post(f"{url}/get_message_history", data={"user_one": "x", "user_two": "y"})
    assert reply.status_code == 200
    assert reply.json()["history"] == []
    assert not list(open_server.data_dir.glob("*.db"))
    reply = http.post(f"{url}/send_message/y", data={"author": "x", "message": "later"})
    assert reply.status_code == 200
    reply = http.post(f"{url}/get_message_history", data={"user_one": "y", "user_two": "x"})
    assert [m["message"] for m in reply.json()["history"]] == ["later"]


def make_seed_file(path: Path, rows: list[tuple[str, str, str]]) -> None:
    """A file exactly as the original server wrote it."""
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE conversation (author text, message text, date_sent text)")
    conn.executemany("INSERT INTO conversation VALUES (?, ?, ?)", rows)
    conn.commit()
    conn.close()


def test_a_seed_schema_file_is_served_and_upgraded_in_place(open_server: Server) -> None:
    rows = [("Alice", f"old {i}", str(1_600_000_000 + i)) for i in range(50)]
    make_seed_file(open_server.data_dir / "alice_bob.db", rows)
    url = open_server.url
    reply = http.post(f"{url}/get_message_history", data={"user_one": "alice", "user_two": "bob"})
    history = reply.json()["history"]
    assert [m["id"] for m in history] == list(range(1, 51))
    assert [m["message"] for m in history] == [r[1] for r in rows]
    assert history[0]["date_sent"] == 1_600_000_000
    reply = http.post(
        f"{url}/send_message/alice", data={"author": "bob", "message": "new", "client_id": "c1"}
    )
    assert reply.json()["id"] == 51
    assert [m["rev"] for m in history] == list(range(1, 51)), "old rows: rev = rowid"
    assert reply.json()["rev"] == 51
    conn = sqlite3.connect(open_server.data_dir / "alice_bob.db")
    assert conn.execute("SELECT count(*) FROM conversation").fetchone()[0] == 51
    assert conn.execute("PRAGMA user_version").fetchone()[0] >= 2
    # The seed's columns are still there, readable by the original server's query.
    assert (
        conn.execute("SELECT author, message, date_sent FROM conversation").fetchall()[:50] == rows
    )
    conn.close()


def test_an_empty_file_left_by_the_seed_bug_is_repaired(open_server: Server) -> None:
    (open_server.data_dir / "alice_bob.db").touch()
    url = open_server.url
    reply = http.post(
        f"{url}/create_conversation_db", data={"user_one": "alice", "user_two": "bob"}
    )
    assert reply.json() == {"success": True}
    reply = http.post(f"{url}/send_message/bob", data={"author": "alice", "message": "fixed"})
    assert reply.status_code == 200
    reply = http.post(f"{url}/get_message_history", data={"user_one": "alice", "user_two": "bob"})
    assert [m["message"] for m in reply.json()["history"]] == ["fixed"]


def test_the_seed_client_reads_edits_and_deletions_as_plain_messages(open_server: Server) -> None:
    """The book's client knows nothing of revisions: it sees the text as it is now."""
    url = open_server.url
    with client(base_url=url) as seed:
        for text in ("first", "second"):
            seed.post("/send_message/bob", data={"author": "alice", "message": text})
    pair = {"user_one": "alice", "user_two": "bob"}
    http.post(f"{url}/edit_message", data={**pair, "id": 1, "message": "first, fixed"})
    http.post(f"{url}/delete_message", data={**pair, "id": 2})
    with client(base_url=url) as seed:
        reply = seed.post("/get_message_history", data=pair)
    history = reply.json()["history"]
    assert [(m["author"], m["message"]) for m in history] == [
        ("alice", "first, fixed"),
        ("alice", ""),
    ]
    assert all({"author", "message", "date_sent"} <= set(m) for m in history)
