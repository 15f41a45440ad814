"""Message requests: a stranger's conversation waits outside the friend list and rings nothing."""

from __future__ import annotations

import pytest

from tests.people import Person, meet
from tests.support import Server

pytestmark = pytest.mark.both_tiers  # in-process (fast tier) and live


def test_a_strangers_messages_do_not_ring(server: Server) -> None:
    p = meet(server, "alice", "bob")
    mallory = Person(server, "mallory")
    p["bob"].send("alice", "a friend's message")
    cursor = p["alice"].cursor()
    unread_before = {f["username"]: f["unread"] for f in p["alice"].friends()["friends"]}
    for n in range(3):
        mallory.send("alice", f"buy my stuff {n}")
    body = p["alice"].friends()
    assert [f["username"] for f in body["friends"]] == ["bob"], "not in the friend list"
    assert {f["username"]: f["unread"] for f in body["friends"]} == unread_before
    (request,) = body["requests"]
    assert (request["username"], request["unread"], request["request"]) == ("mallory", 3, True)
    assert request["last_message"]["message"] == "buy my stuff 2"
    change = p["alice"].changes(cursor)["mallory"]
    assert (change["request"], change["listed"], change["unread"]) == (True, False, 3)
    # listed in the feed without a cursor too, as a request
    first = {c["username"]: c for c in p["alice"].feed()["changed"]}
    assert first["mallory"]["request"] is True and first["bob"]["request"] is False


def test_accepting_a_request_makes_a_friend(server: Server) -> None:
    alice, mallory = Person(server, "alice"), Person(server, "mallory")
    mallory.send("alice", "hi, we met at the conference")
    cursor = alice.cursor()
    alice.add("mallory")
    change = alice.changes(cursor)["mallory"]
    assert (change["request"], change["listed"], change["unread"]) == (False, True, 1)
    body = alice.friends()
    assert [f["username"] for f in body["friends"]] == ["mallory"] and body["requests"] == []
    # the one who wrote first never saw the other as a request
    assert [f["username"] for f in mallory.friends()["friends"]] == ["alice"]


def test_replying_accepts_too(server: Server) -> None:
    alice, mallory = Person(server, "alice"), Person(server, "mallory")
    mallory.send("alice", "hello?")
    alice.send("mallory", "hello yourself")
    body = alice.friends()
    assert [f["username"] for f in body["friends"]] == ["mallory"] and body["requests"] == []


def test_declining_hides_it_until_they_write_again(server: Server) -> None:
    alice, mallory = Person(server, "alice"), Person(server, "mallory")
    mallory.send("alice", "one")
    alice.ok("/remove_friend", username="mallory")
    assert alice.friends() == {"friends": [], "blocked": [], "requests": []}
    mallory.send("alice", "two")
    body = alice.friends()
    assert body["friends"] == [] and [f["username"] for f in body["requests"]] == ["mallory"]


def test_blocking_a_request_stops_it(server: Server) -> None:
    alice, mallory = Person(server, "alice"), Person(server, "mallory")
    mallory.send("alice", "one")
    cursor = alice.cursor()
    alice.ok("/block_friend", username="mallory")
    change = alice.changes(cursor)["mallory"]
    assert (change["request"], change["listed"], change["blocked"]) == (False, False, True)
    assert alice.friends() == {"friends": [], "blocked": ["mallory"], "requests": []}
    mallory.refused("/send_message/alice", 403, "blocked", author="mallory", message="two")
