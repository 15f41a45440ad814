"""Edit and delete through the real server: author only, deleted stays deleted, and every
change takes the pair's next revision, which ``after_rev`` and both feeds see."""

from __future__ import annotations

import sqlite3

import pytest

from tests.people import Person, meet
from tests.support import Server, http

pytestmark = pytest.mark.both_tiers  # in-process (fast tier) and live


def test_only_the_author_edits_or_deletes(server: Server) -> None:
    p = meet(server, "alice", "bob")
    carol = Person(server, "carol")
    sent = p["alice"].send("bob", "mine")
    pair = {"user_one": "alice", "user_two": "bob", "id": sent["id"]}
    p["bob"].refused("/edit_message", 403, "forbidden", **pair, message="yours now")
    p["bob"].refused("/delete_message", 403, "forbidden", **pair)
    carol.refused("/edit_message", 403, "forbidden", **pair, message="nobody's")
    carol.refused("/delete_message", 403, "forbidden", **pair)
    (message,) = p["bob"].messages("alice")
    assert (message["message"], message["edited_at"], message["deleted"]) == ("mine", None, False)
    assert p["alice"].edit("bob", sent["id"], "still mine")["message"] == "still mine"


def test_unknown_and_malformed_ids(server: Server) -> None:
    p = meet(server, "alice", "bob", "carol")
    p["alice"].refused(
        "/edit_message", 404, "unknown_message", **p["alice"].pair("bob"), id=1, message="x"
    )
    p["alice"].refused("/delete_message", 404, "unknown_message", **p["alice"].pair("bob"), id=1)
    p["alice"].send("bob", "one")
    p["carol"].send("bob", "elsewhere")
    pair = p["alice"].pair("bob")
    p["alice"].refused("/edit_message", 404, "unknown_message", **pair, id=2, message="x")
    p["alice"].refused("/delete_message", 404, "unknown_message", **pair, id=99)
    p["alice"].refused("/delete_message", 400, "missing_field", **pair)
    p["alice"].refused("/delete_message", 400, "invalid_field", **pair, id="first")
    p["alice"].refused("/delete_message", 400, "invalid_field", **pair, id=0)
    p["alice"].refused("/edit_message", 400, "missing_field", **pair, id=1)


def test_an_edit_follows_the_rules_of_a_send(server: Server) -> None:
    p = meet(server, "alice", "bob")
    sent = p["alice"].send("bob", "draft")
    pair = {**p["alice"].pair("bob"), "id": sent["id"]}
    p["alice"].refused("/edit_message", 400, "empty_message", **pair, message="   ")
    p["alice"].refused("/edit_message", 400, "message_too_long", **pair, message="x" * 4001)
    p["alice"].refused("/edit_message", 400, "invalid_field", **pair, message="a\x00b")
    edited = p["alice"].edit("bob", sent["id"], "  exactly as typed  ")
    assert edited["message"] == "  exactly as typed  " and edited["edited_at"] is not None
    assert edited["rev"] == sent["rev"] + 1
    again = p["alice"].edit("bob", sent["id"], "  exactly as typed  ")
    assert again == edited, "the same text again changes nothing (no new revision)"


def test_a_deleted_message_stays_deleted(server: Server) -> None:
    p = meet(server, "alice", "bob")
    first = p["alice"].send("bob", "a secret I regret")
    p["bob"].send("alice", "answer", reply_to=first["id"])
    deleted = p["alice"].delete("bob", first["id"])
    assert (deleted["id"], deleted["author"], deleted["message"], deleted["deleted"]) == (
        first["id"],
        "alice",
        "",
        True,
    )
    assert p["alice"].delete("bob", first["id"]) == deleted, "twice: the same, no new revision"
    p["alice"].refused(
        "/edit_message",
        409,
        "message_deleted",
        **p["alice"].pair("bob"),
        id=first["id"],
        message="back",
    )
    history = p["bob"].messages("alice")
    assert [(m["id"], m["message"], m["deleted"]) for m in history] == [
        (first["id"], "", True),
        (first["id"] + 1, "answer", False),
    ]
    assert history[1]["reply_to"] == first["id"], "a reply keeps pointing at the deleted one"
    # the text is gone from the pair's file, not just hidden
    conn = sqlite3.connect(server.data_dir / "alice_bob.db")
    try:
        texts = [row[0] for row in conn.execute("SELECT message FROM conversation")]
    finally:
        conn.close()
    assert "a secret I regret" not in texts
    assert p["bob"].search("alice", "secret")["results"] == []


def test_after_rev_sees_new_edited_and_deleted_messages_in_revision_order(server: Server) -> None:
    p = meet(server, "alice", "bob")
    ids = [p["alice"].send("bob", f"m{n}")["id"] for n in range(3)]
    start = p["bob"].history("alice", after_rev=0)
    assert [m["id"] for m in start["history"]] == ids and start["rev"] == 3
    assert [m["rev"] for m in start["history"]] == [1, 2, 3]
    p["alice"].edit("bob", ids[0], "m0, edited")
    p["alice"].delete("bob", ids[1])
    p["bob"].send("alice", "m3")
    changed = p["bob"].history("alice", after_rev=start["rev"])
    assert [(m["id"], m["rev"], m["message"], m["deleted"]) for m in changed["history"]] == [
        (ids[0], 4, "m0, edited", False),
        (ids[1], 5, "", True),
        (4, 6, "m3", False),
    ]
    assert (changed["rev"], changed["has_more"]) == (6, False)
    assert p["bob"].history("alice", after_rev=6)["history"] == []
    # pages: the reply's rev continues where a page cut short ended
    page = p["bob"].history("alice", after_rev=start["rev"], limit=2)
    assert [m["rev"] for m in page["history"]] == [4, 5] and page["has_more"] is True
    rest = p["bob"].history("alice", after_rev=page["rev"], limit=2)
    assert [m["rev"] for m in rest["history"]] == [6] and rest["has_more"] is False
    assert rest["rev"] == 6
    # every reply carries the pair's revision, whole histories included
    assert p["bob"].history("alice")["rev"] == 6
    assert p["bob"].history("alice", limit=1)["rev"] == 6
    assert p["bob"].history("alice", after_id=4)["rev"] == 6


def test_revisions_strictly_increase_across_every_change(server: Server) -> None:
    p = meet(server, "alice", "bob")
    revs = [p["alice"].send("bob", "one")["rev"], p["bob"].send("alice", "two")["rev"]]
    revs.append(p["alice"].edit("bob", 1, "one!")["rev"])
    revs.append(p["bob"].edit("alice", 2, "two!")["rev"])
    revs.append(p["alice"].delete("bob", 1)["rev"])
    revs.append(p["alice"].send("bob", "three")["rev"])
    assert revs == sorted(set(revs)) and len(revs) == 6


def test_an_edit_or_delete_moves_both_feeds_and_the_friend_list(server: Server) -> None:
    p = meet(server, "alice", "bob")
    sent = [p["alice"].send("bob", text)["id"] for text in ("first", "last")]
    cursors = {name: person.cursor() for name, person in p.items()}
    edited = p["alice"].edit("bob", sent[1], "last, edited")
    for name, other in (("alice", "bob"), ("bob", "alice")):
        change = p[name].changes(cursors[name])[other]
        assert change["rev"] == edited["rev"], name
    assert p["bob"].friend("alice")["unread"] == 2, "an edit is no new message"
    last = p["bob"].friend("alice")["last_message"]
    assert (last["message"], last["edited_at"], last["rev"]) == (
        "last, edited",
        edited["edited_at"],
        edited["rev"],
    )
    cursor = p["bob"].cursor()
    deleted = p["alice"].delete("bob", sent[1])
    change = p["bob"].changes(cursor)["alice"]
    assert (change["rev"], change["unread"]) == (deleted["rev"], 1), "deleted: no longer unread"
    last = p["bob"].friend("alice")["last_message"]
    assert (last["message"], last["deleted"]) == ("", True), "no preview of a deleted text"


def test_a_blocked_author_cannot_edit_but_can_still_delete(server: Server) -> None:
    p = meet(server, "alice", "bob")
    sent = p["alice"].send("bob", "hello")
    p["bob"].ok("/block_friend", username="alice")
    pair = {**p["alice"].pair("bob"), "id": sent["id"]}
    p["alice"].refused("/edit_message", 403, "blocked", **pair, message="let me in")
    assert p["alice"].delete("bob", sent["id"])["deleted"] is True


def test_one_cursor_at_a_time(server: Server) -> None:
    p = meet(server, "alice", "bob")
    p["alice"].send("bob", "one")
    for fields in (
        {"after_id": 0, "after_rev": 0},
        {"before_id": 2, "around_id": 1},
        {"after_rev": 0, "around_id": 1},
        {"after_id": 0, "before_id": 2},
    ):
        p["alice"].refused(
            "/get_message_history", 400, "invalid_field", **p["alice"].pair("bob"), **fields
        )


def test_a_pair_that_never_spoke_is_at_revision_zero(server: Server) -> None:
    p = meet(server, "alice", "bob")
    for fields in ({}, {"after_rev": 0}, {"limit": 5}, {"after_id": 0}):
        body = p["alice"].history("bob", **fields)
        assert (body["history"], body["rev"]) == ([], 0)
    p["alice"].refused(
        "/get_message_history", 404, "unknown_message", **p["alice"].pair("bob"), around_id=1
    )
    assert not list(server.data_dir.glob("*.db")), "reading creates no file"


def test_open_mode_lets_the_anonymous_seed_client_edit_as_it_sends(open_server: Server) -> None:
    """Open mode: anyone may send as anyone, so anyone may edit or delete (design.md)."""
    url = open_server.url
    http.post(f"{url}/send_message/bob", data={"author": "alice", "message": "typo"})
    pair = {"user_one": "bob", "user_two": "alice"}
    reply = http.post(f"{url}/edit_message", data={**pair, "id": 1, "message": "fixed"})
    assert reply.json()["message"]["message"] == "fixed"
    reply = http.post(f"{url}/delete_message", data={**pair, "id": 1})
    assert reply.json()["message"]["deleted"] is True
    history = http.post(f"{url}/get_message_history", data=pair).json()["history"]
    assert [(m["author"], m["message"]) for m in history] == [("alice", "")]
