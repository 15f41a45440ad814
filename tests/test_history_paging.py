"""after_id, before_id and limit on long conversations."""

from __future__ import annotations

import sqlite3

import pytest

from tests.support import Server, http

pytestmark = pytest.mark.both_tiers  # in-process (fast tier) and live

N = 100_000


def fill(server: Server, n: int) -> None:
    """Create the pair through the API, then bulk-insert rows through SQLite directly."""
    http.post(f"{server.url}/create_conversation_db", data={"user_one": "alice", "user_two": "bob"})
    conn = sqlite3.connect(server.data_dir / "alice_bob.db")
    conn.executemany(
        "INSERT INTO conversation (author, message, date_sent) VALUES (?, ?, ?)",
        ((("alice", "bob")[i % 2], f"m{i}", 1_700_000_000 + i) for i in range(n)),
    )
    conn.commit()
    conn.close()


def history(server: Server, **fields: object) -> dict[str, object]:
    reply = http.post(
        f"{server.url}/get_message_history",
        data={"user_one": "alice", "user_two": "bob", **fields},
        timeout=60,
    )
    assert reply.status_code == 200, reply.text
    body: dict[str, object] = reply.json()
    return body


def test_after_id_on_a_100k_conversation_returns_exactly_the_newer(open_server: Server) -> None:
    fill(open_server, N)
    for after in (0, 1, 50_000, N - 3, N, N + 10):
        body = history(open_server, after_id=after)
        ids = [m["id"] for m in body["history"]]  # type: ignore[attr-defined]
        assert ids == list(range(after + 1, N + 1))
    http.post(f"{open_server.url}/send_message/bob", data={"author": "alice", "message": "new"})
    body = history(open_server, after_id=N)
    assert [(m["id"], m["message"]) for m in body["history"]] == [(N + 1, "new")]  # type: ignore[attr-defined]


def test_after_id_with_limit_pages_forward(open_server: Server) -> None:
    fill(open_server, 25)
    body = history(open_server, after_id=10, limit=5)
    assert [m["id"] for m in body["history"]] == [11, 12, 13, 14, 15]  # type: ignore[attr-defined]
    assert body["has_more"] is True
    body = history(open_server, after_id=20, limit=5)
    assert [m["id"] for m in body["history"]] == [21, 22, 23, 24, 25]  # type: ignore[attr-defined]
    assert body["has_more"] is False


def test_tail_and_before_id_page_backwards_oldest_first(open_server: Server) -> None:
    fill(open_server, 25)
    body = history(open_server, limit=10)
    assert [m["id"] for m in body["history"]] == list(range(16, 26))  # type: ignore[attr-defined]
    assert body["has_more"] is True
    body = history(open_server, before_id=16, limit=10)
    assert [m["id"] for m in body["history"]] == list(range(6, 16))  # type: ignore[attr-defined]
    body = history(open_server, before_id=6, limit=10)
    assert [m["id"] for m in body["history"]] == [1, 2, 3, 4, 5]  # type: ignore[attr-defined]
    assert body["has_more"] is False


def test_both_cursors_at_once_is_refused(open_server: Server) -> None:
    reply = http.post(
        f"{open_server.url}/get_message_history",
        data={"user_one": "alice", "user_two": "bob", "after_id": 1, "before_id": 5},
    )
    assert reply.status_code == 400
