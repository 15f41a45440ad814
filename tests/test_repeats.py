"""A long-poll asked again unchanged is parked by the front from what its last run
decided (backend/server/repeats.py) — and never answers with what is no longer true.

Each test first makes the front remember a request (a 1-s wait that ends with
nothing new), asks it again byte for byte, then changes the world and asks it a
third time: a new message is seen, a revoked token gets its 401, another user's
identical request is not served from this one's. Against the real
``pairchat-server`` (granian and the ASGI front: the test client has no front).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from tests.support import ServerProcess, bearer, http, register


def feed(url: str, token: str, since: str | None = None, wait: float = 1) -> httpx.Response:
    params: dict[str, Any] = {} if since is None else {"since": since, "wait": wait}
    return http.get(f"{url}/updates", params=params, headers=bearer(token), timeout=30)


def pair_poll(url: str, token: str, after_id: int, wait: float = 1) -> httpx.Response:
    return http.post(
        f"{url}/get_message_history",
        data={"user_one": "alice", "user_two": "bob", "after_id": after_id, "wait": wait},
        headers=bearer(token),
        timeout=30,
    )


def send(url: str, token: str, author: str, to: str, text: str) -> int:
    reply = http.post(
        f"{url}/send_message/{to}", data={"author": author, "message": text}, headers=bearer(token)
    )
    assert reply.status_code == 200, reply.text
    sent: int = reply.json()["id"]
    return sent


def remembered_feed(url: str, token: str) -> str:
    """alice's cursor, after a feed wait that ended with nothing new, asked twice."""
    cursor: str = feed(url, token).json()["cursor"]
    for _ in range(2):  # the first run is remembered, the second is a repeat
        quiet = feed(url, token, cursor)
        assert quiet.status_code == 200 and quiet.json() == {"cursor": cursor, "changed": []}
    return cursor


def remembered_pair_wait(url: str, token: str, after_id: int) -> None:
    """A pair wait after ``after_id`` that ended with nothing new, asked twice."""
    for _ in range(2):  # the first run is remembered, the second is a repeat
        quiet = pair_poll(url, token, after_id)
        assert quiet.status_code == 200 and quiet.json()["history"] == []


def bob_said_hello(server_process: Callable[..., ServerProcess]) -> tuple[str, str, str, int]:
    """A new server where bob has sent alice "hello": its URL, alice's and bob's tokens,
    the message's id."""
    url = server_process().url
    alice, bob = register(url, "alice"), register(url, "bob")
    return url, alice, bob, send(url, bob, "bob", "alice", "hello")


def test_a_repeated_feed_wait_sees_what_changed(
    server_process: Callable[..., ServerProcess],
) -> None:
    url, alice, bob, _ = bob_said_hello(server_process)
    cursor = remembered_feed(url, alice)
    news = send(url, bob, "bob", "alice", "news")
    reply = feed(url, alice, cursor)
    assert reply.status_code == 200
    changed = reply.json()["changed"]
    assert [(c["username"], c["last_id"], c["unread"]) for c in changed] == [("bob", news, 2)]


def test_a_signed_out_token_gets_its_401_on_a_repeated_feed_wait(
    server_process: Callable[..., ServerProcess],
) -> None:
    url = server_process().url
    alice = register(url, "alice")
    other = http.post(url + "/login", data={"username": "alice", "password": "correct horse"})
    cursor = remembered_feed(url, alice)
    assert http.post(url + "/logout", headers=bearer(alice)).status_code == 200
    assert feed(url, alice, cursor).status_code == 401
    # alice's other sign-in is untouched: its own request still waits and answers
    assert feed(url, other.json()["token"], cursor).status_code == 200


def test_every_token_revoked_gets_its_401_on_a_repeated_feed_wait(
    server_process: Callable[..., ServerProcess],
) -> None:
    url = server_process().url
    first = register(url, "alice")
    second = http.post(url + "/login", data={"username": "alice", "password": "correct horse"})
    second_token = second.json()["token"]
    cursor = remembered_feed(url, second_token)
    changed = http.post(
        url + "/change_password",
        data={"password": "correct horse", "new_password": "a brand new one"},
        headers=bearer(first),
    )
    assert changed.status_code == 200, changed.text
    assert feed(url, second_token, cursor).status_code == 401


def test_a_revoked_token_gets_its_401_on_a_repeated_pair_wait(
    server_process: Callable[..., ServerProcess],
) -> None:
    url, alice, _, last = bob_said_hello(server_process)
    remembered_pair_wait(url, alice, last)
    assert http.post(url + "/logout", headers=bearer(alice)).status_code == 200
    assert pair_poll(url, alice, last).status_code == 401


def test_another_users_identical_request_is_not_served_from_a_repeat(
    server_process: Callable[..., ServerProcess],
) -> None:
    url, alice, bob, last = bob_said_hello(server_process)
    remembered_pair_wait(url, alice, last)
    carol = register(url, "carol")
    refused = pair_poll(url, carol, last)  # same body and path, carol's token: not hers
    assert refused.status_code == 403, refused.text
    assert pair_poll(url, bob, last).status_code == 200
