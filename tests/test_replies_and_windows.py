"""Replies (``reply_to``) and windows around an old message (``around_id``)."""

from __future__ import annotations

import sqlite3

import pytest

from tests.people import meet
from tests.support import Server

pytestmark = pytest.mark.both_tiers  # in-process (fast tier) and live


def test_a_reply_names_a_message_of_the_same_pair(server: Server) -> None:
    p = meet(server, "alice", "bob", "carol")
    question = p["bob"].send("alice", "lunch?")
    p["carol"].send("alice", "in another pair")  # id 1 of alice_carol
    answer = p["alice"].send("bob", "yes!", reply_to=question["id"])
    (_, reply) = p["bob"].messages("alice")
    assert (reply["id"], reply["reply_to"]) == (answer["id"], question["id"])
    assert p["bob"].messages("alice")[0]["reply_to"] is None
    pair_size = len(p["bob"].messages("alice"))
    for bad in (99, pair_size + 1):
        p["alice"].refused(
            "/send_message/bob", 400, "invalid_field", author="alice", message="x", reply_to=bad
        )
    for bad in ("lunch", "-1", "0", "1.5"):
        p["alice"].refused(
            "/send_message/bob", 400, "invalid_field", author="alice", message="x", reply_to=bad
        )
    assert len(p["bob"].messages("alice")) == pair_size, "a refused reply stores nothing"
    # to a pair that has never spoken, nothing can be replied to
    p["carol"].refused(
        "/send_message/bob", 400, "invalid_field", author="carol", message="x", reply_to=1
    )
    assert p["bob"].messages("carol") == []


def fill(server: Server, count: int) -> None:
    """``count`` more messages in alice_bob, written straight into its file."""
    conn = sqlite3.connect(server.data_dir / "alice_bob.db")
    conn.executemany(
        "INSERT INTO conversation (author, message, date_sent) VALUES (?, ?, ?)",
        ((("alice", "bob")[i % 2], f"m{i}", 1_700_000_000 + i) for i in range(count)),
    )
    conn.commit()
    conn.close()


def test_around_id_opens_the_page_centred_on_a_message(server: Server) -> None:
    p = meet(server, "alice", "bob")
    p["alice"].send("bob", "first")
    fill(server, 499)  # ids 1..500
    body = p["bob"].history("alice", around_id=250, limit=11)
    assert [m["id"] for m in body["history"]] == list(range(245, 256))
    assert (body["has_more"], body["has_more_after"], body["rev"]) == (True, True, 500)
    # near either end the page keeps its size and says which side is exhausted
    body = p["bob"].history("alice", around_id=2, limit=10)
    assert [m["id"] for m in body["history"]] == list(range(1, 11))
    assert (body["has_more"], body["has_more_after"]) == (False, True)
    body = p["bob"].history("alice", around_id=499, limit=10)
    assert [m["id"] for m in body["history"]] == list(range(491, 501))
    assert (body["has_more"], body["has_more_after"]) == (True, False)
    # the default page is 100 messages
    body = p["bob"].history("alice", around_id=300)
    assert len(body["history"]) == 100 and 300 in [m["id"] for m in body["history"]]
    p["bob"].refused(
        "/get_message_history", 404, "unknown_message", **p["bob"].pair("alice"), around_id=501
    )


def test_rows_written_without_revisions_get_them(server: Server) -> None:
    """A script (or the original server) inserts plain rows: each still takes the pair's
    next revision, so ``after_rev`` sees them."""
    p = meet(server, "alice", "bob")
    p["alice"].send("bob", "first")
    fill(server, 3)
    body = p["bob"].history("alice", after_rev=1)
    assert [(m["id"], m["rev"]) for m in body["history"]] == [(2, 2), (3, 3), (4, 4)]
