"""Whole-history search on the server (FTS5 in the pair's own file), through the real server."""

from __future__ import annotations

import sqlite3

import pytest

from tests.people import meet
from tests.support import Server, http

pytestmark = pytest.mark.both_tiers  # in-process (fast tier) and live


def bulk(server: Server, texts: list[str], file: str = "alice_bob.db") -> None:
    """Messages written straight into a pair's file (as the benchmark seeds it)."""
    conn = sqlite3.connect(server.data_dir / file)
    conn.executemany(
        "INSERT INTO conversation (author, message, date_sent) VALUES (?, ?, ?)",
        ((("alice", "bob")[i % 2], text, 1_700_000_000 + i) for i, text in enumerate(texts)),
    )
    conn.commit()
    conn.close()


def test_a_match_20000_messages_back_is_found(server: Server) -> None:
    p = meet(server, "alice", "bob")
    needle = p["alice"].send("bob", "the wifi password is zanzibar")
    bulk(server, [f"chatter number {n} about nothing much" for n in range(20_000)])
    newest = p["bob"].history("alice", limit=1)["history"][0]["id"]
    assert newest - needle["id"] == 20_000
    body = p["bob"].search("alice", "zanzibar")
    assert [m["id"] for m in body["results"]] == [needle["id"]]
    assert body["results"][0]["message"] == "the wifi password is zanzibar"
    assert body["has_more"] is False
    # and the window around it opens there
    window = p["bob"].history("alice", around_id=needle["id"], limit=20)
    assert needle["id"] in [m["id"] for m in window["history"]]


def test_results_are_newest_first_and_page_with_before_id(server: Server) -> None:
    p = meet(server, "alice", "bob")
    ids = [p["alice"].send("bob", f"pizza tonight, take {n}")["id"] for n in range(5)]
    p["bob"].send("alice", "no thanks")
    body = p["bob"].search("alice", "pizza", limit=2)
    assert [m["id"] for m in body["results"]] == [ids[4], ids[3]] and body["has_more"] is True
    body = p["bob"].search("alice", "pizza", limit=2, before_id=ids[3])
    assert [m["id"] for m in body["results"]] == [ids[2], ids[1]] and body["has_more"] is True
    body = p["bob"].search("alice", "pizza", limit=2, before_id=ids[1])
    assert [m["id"] for m in body["results"]] == [ids[0]] and body["has_more"] is False
    assert len(p["bob"].search("alice", "pizza")["results"]) == 5  # the default limit is 20


def test_plain_words_each_a_prefix_case_and_accents_ignored(server: Server) -> None:
    p = meet(server, "alice", "bob")
    p["alice"].send("bob", "Meet me at the Café Müller")
    p["alice"].send("bob", "the cafe is closed")
    assert [m["message"] for m in p["bob"].search("alice", "CAFE muller")["results"]] == [
        "Meet me at the Café Müller"
    ]
    assert len(p["bob"].search("alice", "caf")["results"]) == 2
    assert p["bob"].search("alice", "afe")["results"] == [], "words are matched from their start"


@pytest.mark.parametrize(
    "query",
    [
        '"',
        '"unbalanced',
        "*",
        "a*b",
        "NEAR(cafe closed)",
        "cafe OR closed",
        "cafe AND NOT closed",
        "-closed",
        "^cafe",
        "message:cafe",
        "{message}: cafe",
        "(((",
        "'; DROP TABLE conversation; --",
        "\\",
        "🍕🍕",
        "x" * 256,
        "cafe " * 16,
    ],
)
def test_no_query_is_read_as_fts_syntax(server: Server, query: str) -> None:
    p = meet(server, "alice", "bob")
    p["alice"].send("bob", "the cafe is closed")
    reply = p["bob"].post("/search_messages", **p["bob"].pair("alice"), q=query)
    assert reply.status_code == 200, reply.text
    assert isinstance(reply.json()["results"], list)
    assert len(p["bob"].messages("alice")) == 1


def test_the_words_of_a_query_still_match_among_its_punctuation(server: Server) -> None:
    p = meet(server, "alice", "bob")
    p["alice"].send("bob", "the cafe is closed")
    for query in ('"cafe"', "cafe*", "(cafe)", "cafe: closed!", '"cafe" -closed', "^the"):
        assert len(p["bob"].search("alice", query)["results"]) == 1, query
    # operators are words like any other: every word must match
    assert p["bob"].search("alice", "cafe OR open")["results"] == []
    assert p["bob"].search("alice", "NEAR(cafe closed)")["results"] == []


def test_bad_search_fields_are_400(server: Server) -> None:
    p = meet(server, "alice", "bob")
    pair = p["alice"].pair("bob")
    p["alice"].refused("/search_messages", 400, "missing_field", **pair)
    p["alice"].refused("/search_messages", 400, "missing_field", **pair, q="   ")
    p["alice"].refused("/search_messages", 400, "invalid_field", **pair, q="x" * 257)
    p["alice"].refused("/search_messages", 400, "invalid_field", **pair, q="a\x00b")
    p["alice"].refused("/search_messages", 400, "invalid_field", **pair, q="a " * 17)
    for limit in ("0", "101", "many"):
        p["alice"].refused("/search_messages", 400, "invalid_field", **pair, q="x", limit=limit)
    p["alice"].refused("/search_messages", 400, "invalid_field", **pair, q="x", before_id="0")


def test_deleted_messages_never_match_and_edits_are_indexed_again(server: Server) -> None:
    p = meet(server, "alice", "bob")
    gone = p["alice"].send("bob", "meet at the old bridge")
    moved = p["alice"].send("bob", "or at the station")
    p["alice"].delete("bob", gone["id"])
    assert p["bob"].search("alice", "bridge")["results"] == []
    p["alice"].edit("bob", moved["id"], "or at the harbour")
    assert p["bob"].search("alice", "station")["results"] == []
    assert [m["id"] for m in p["bob"].search("alice", "harbour")["results"]] == [moved["id"]]


def test_a_pair_that_never_spoke_finds_nothing_and_creates_no_file(server: Server) -> None:
    p = meet(server, "alice", "bob")
    assert p["alice"].search("bob", "anything") == {"results": [], "has_more": False}
    assert not list(server.data_dir.glob("*.db"))


def test_an_old_file_builds_its_index_on_the_first_search(open_server: Server) -> None:
    """A file exactly as the original server wrote it: no index until someone searches."""
    path = open_server.data_dir / "alice_bob.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE conversation (author text, message text, date_sent text)")
    conn.executemany(
        "INSERT INTO conversation VALUES (?, ?, ?)",
        [("Alice", f"old message {n}", str(1_600_000_000 + n)) for n in range(3_000)]
        + [("bob", "the treasure is under the oak", "1600009999")],
    )
    conn.commit()
    conn.close()
    url = open_server.url
    pair = {"user_one": "alice", "user_two": "bob"}
    history = http.post(f"{url}/get_message_history", data=pair).json()["history"]
    assert len(history) == 3_001 and history[-1]["rev"] == 3_001, "upgraded: rev = rowid"
    conn = sqlite3.connect(path)
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    conn.close()
    assert "conversation_fts" not in tables, "opening alone does not build the index"
    found = http.post(f"{url}/search_messages", data={**pair, "q": "treasure oak"}).json()
    assert [m["id"] for m in found["results"]] == [3_001]
    http.post(f"{url}/send_message/alice", data={"author": "bob", "message": "a new treasure"})
    found = http.post(f"{url}/search_messages", data={**pair, "q": "treasure"}).json()
    assert [m["id"] for m in found["results"]] == [3_002, 3_001], "kept current after"
