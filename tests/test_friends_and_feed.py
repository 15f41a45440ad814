"""Friends, blocking, unread counts and the per-user change feed."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.support import Server, bearer, client

pytestmark = pytest.mark.both_tiers  # in-process (fast tier) and live


class As:
    """A tiny client for one user: just enough to make the tests read well."""

    def __init__(self, server: Server, name: str, token: str) -> None:
        self.name = name
        self.client = client(base_url=server.url, headers=bearer(token), timeout=30)

    def post(self, path: str, **data: Any) -> httpx.Response:
        return self.client.post(path, data=data)

    def send(self, to: str, text: str) -> httpx.Response:
        return self.post(f"/send_message/{to}", author=self.name, message=text)

    def friends(self) -> dict[str, Any]:
        body: dict[str, Any] = self.client.get("/friends").json()
        return body

    def listed(self) -> dict[str, dict[str, Any]]:
        return {f["username"]: f for f in self.friends()["friends"]}

    def requests(self) -> dict[str, dict[str, Any]]:
        return {f["username"]: f for f in self.friends()["requests"]}

    def updates(self, since: str | None = None) -> dict[str, Any]:
        params = {} if since is None else {"since": since}
        body: dict[str, Any] = self.client.get("/updates", params=params).json()
        return body


def people(server: Server, users: dict[str, str]) -> dict[str, As]:
    return {name: As(server, name, token) for name, token in users.items()}


def test_added_friends_are_listed_and_strangers_wait_in_requests(
    server: Server, users: dict[str, str]
) -> None:
    p = people(server, users)
    assert p["alice"].listed() == {}
    assert p["alice"].post("/add_friend", username="Bob").status_code == 200
    assert p["carol"].send("alice", "hi alice").status_code == 200
    assert set(p["alice"].listed()) == {"bob"}
    request = p["alice"].requests()["carol"]
    assert request["last_message"]["message"] == "hi alice" and request["unread"] == 1
    assert request["request"] is True
    # accepting (adding) moves carol into the list, most recent activity first
    assert p["alice"].post("/add_friend", username="carol").status_code == 200
    listed = p["alice"].listed()
    assert set(listed) == {"bob", "carol"} and p["alice"].requests() == {}
    assert listed["bob"]["last_message"] is None and listed["bob"]["unread"] == 0
    assert listed["carol"]["last_message"]["message"] == "hi alice"
    assert listed["carol"]["unread"] == 1 and listed["carol"]["request"] is False
    assert next(f["username"] for f in p["alice"].friends()["friends"]) == "carol"
    # carol wrote first; her side was accepted by writing: alice is no request of hers
    assert set(p["carol"].listed()) == {"alice"} and p["carol"].requests() == {}


def test_unknown_user_is_404(server: Server, users: dict[str, str]) -> None:
    p = people(server, users)
    for path in ("/add_friend", "/block_friend", "/remove_friend", "/unblock_friend"):
        reply = p["alice"].post(path, username="ghost")
        assert reply.status_code == 404 and reply.json()["error"] == "unknown_user"
    assert p["alice"].post("/add_friend", username="alice").status_code == 400


def test_remove_hides_until_they_write_again(server: Server, users: dict[str, str]) -> None:
    p = people(server, users)
    p["alice"].post("/add_friend", username="bob")
    p["bob"].send("alice", "one")
    assert "bob" in p["alice"].listed()
    p["alice"].post("/remove_friend", username="bob")
    assert "bob" not in p["alice"].listed()
    p["bob"].send("alice", "two")
    assert "bob" in p["alice"].listed(), "once accepted, a removed friend comes back listed"


def test_blocked_sends_are_refused_stored_nowhere_and_unlisted(
    server: Server, users: dict[str, str]
) -> None:
    p = people(server, users)
    p["dave"].send("carol", "before the block")
    assert p["carol"].post("/block_friend", username="dave").status_code == 200
    reply = p["dave"].send("carol", "let me in")
    assert reply.status_code == 403 and reply.json()["error"] == "blocked"
    history = (
        p["carol"].post("/get_message_history", user_one="carol", user_two="dave").json()["history"]
    )
    assert [m["message"] for m in history] == ["before the block"]
    body = p["carol"].friends()
    assert "dave" not in {f["username"] for f in body["friends"] + body["requests"]}
    assert body["blocked"] == ["dave"]
    p["carol"].post("/unblock_friend", username="dave")
    assert p["dave"].send("carol", "thanks").status_code == 200
    assert "dave" in p["carol"].requests(), "a stranger unblocked is a request again"


def test_unread_counts_through_send_and_mark_read(server: Server, users: dict[str, str]) -> None:
    p = people(server, users)
    ids = [p["bob"].send("alice", f"m{i}").json()["id"] for i in range(5)]
    p["alice"].send("bob", "my own message does not count")
    assert p["alice"].listed()["bob"]["unread"] == 5
    reply = p["alice"].post("/mark_read", username="bob", last_read_id=ids[2])
    assert reply.json() == {"success": True, "unread": 2}
    assert p["alice"].listed()["bob"]["unread"] == 2
    # the marker never moves back
    assert p["alice"].post("/mark_read", username="bob", last_read_id=ids[0]).json()["unread"] == 2
    assert p["alice"].post("/mark_read", username="bob", last_read_id=ids[-1]).json()["unread"] == 0
    assert p["bob"].listed()["alice"]["unread"] == 1


def test_my_own_read_marker_is_in_my_friend_objects(server: Server, users: dict[str, str]) -> None:
    """``read_up_to``: 0 before I mark anything read, then my marker as the feed says it,
    on friends and requests alike, and whatever the read-receipt settings."""
    p = people(server, users)
    ids = [p["bob"].send("alice", f"m{i}").json()["id"] for i in range(3)]
    p["alice"].post("/add_friend", username="bob")
    assert p["alice"].listed()["bob"]["read_up_to"] == 0
    p["alice"].post("/mark_read", username="bob", last_read_id=ids[1])
    assert p["alice"].listed()["bob"]["read_up_to"] == ids[1]
    changed = {c["username"]: c for c in p["alice"].updates()["changed"]}
    assert changed["bob"]["read_up_to"] == ids[1]  # the same marker the feed carries
    assert p["bob"].listed()["alice"]["read_up_to"] == 0  # my marker, not theirs
    p["alice"].post("/settings", read_receipts="false")
    assert p["alice"].listed()["bob"]["read_up_to"] == ids[1]
    carol_first = p["carol"].send("alice", "hello?").json()["id"]
    p["alice"].post("/mark_read", username="carol", last_read_id=carol_first)
    assert p["alice"].requests()["carol"]["read_up_to"] == carol_first


def test_change_feed(server: Server, users: dict[str, str]) -> None:
    p = people(server, users)
    first = p["alice"].updates()
    assert first["changed"] == [] and first["cursor"]
    cursor = first["cursor"]
    assert p["alice"].updates(cursor)["changed"] == []
    p["bob"].send("alice", "one")
    p["carol"].send("alice", "two")
    p["carol"].send("alice", "three")
    feed = p["alice"].updates(cursor)
    changed = {c["username"]: c for c in feed["changed"]}
    assert set(changed) == {"bob", "carol"}
    assert changed["carol"]["unread"] == 2 and changed["carol"]["last_id"] == 2
    assert changed["bob"]["unread"] == 1
    # nothing new after the new cursor; dave's chat with bob is not alice's business
    p["dave"].send("bob", "elsewhere")
    assert p["alice"].updates(feed["cursor"])["changed"] == []
    # reading moves the feed too (other devices of the same user see the unread drop)
    p["alice"].post("/mark_read", username="carol", last_read_id=2)
    after_read = p["alice"].updates(feed["cursor"])["changed"]
    assert [(c["username"], c["unread"]) for c in after_read] == [("carol", 0)]
    # without a cursor: everything listed
    assert {c["username"] for c in p["alice"].updates()["changed"]} == {"bob", "carol"}


def test_bad_cursor_is_400(server: Server, users: dict[str, str]) -> None:
    p = people(server, users)
    reply = p["alice"].client.get("/updates", params={"since": "yesterday"})
    assert reply.status_code == 400 and reply.json()["error"] == "invalid_field"


def test_a_cursor_of_other_digits_is_400_not_500(server: Server, users: dict[str, str]) -> None:
    """``"²".isdigit()`` is true but ``int("²")`` fails: it used to be a 500."""
    p = people(server, users)
    for since in ("²", "٣", "1" * 19, "-1"):
        reply = p["alice"].client.get("/updates", params={"since": since})
        assert reply.status_code == 400 and reply.json()["error"] == "invalid_field", since


def test_a_retry_after_a_crash_mid_send_still_reaches_the_feed(
    server: Server, users: dict[str, str]
) -> None:
    """The first try stored the row, then the process died before the feed write."""
    p = people(server, users)
    conversation = server.services.conversations.get("alice", "bob", create=True)
    conversation.add_message("bob", "survived", 1_700_000_000, "retry-1")
    assert "bob" not in p["alice"].requests()
    reply = p["bob"].post(
        "/send_message/alice", author="bob", message="survived", client_id="retry-1"
    )
    assert reply.json()["duplicate"] is True
    assert p["alice"].requests()["bob"]["unread"] == 1
    again = p["bob"].post(
        "/send_message/alice", author="bob", message="survived", client_id="retry-1"
    )
    assert again.json()["id"] == reply.json()["id"]
    assert p["alice"].requests()["bob"]["unread"] == 1
