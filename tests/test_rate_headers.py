"""``X-RateLimit-Limit/Remaining/Reset`` on the replies of every route a rate limit governs.

Sends (and edits) per user, new conversations per user, failed logins and
registrations per client address: the successful replies count down, the 429
says 0 remaining and a ``Reset`` equal to its ``Retry-After``; a request that
touches two limits reports the tighter; a route no limit governs carries none.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.support import Server, bearer, http, register

pytestmark = pytest.mark.both_tiers


def _quota(reply: httpx.Response) -> tuple[int, int, int]:
    values = [
        reply.headers.get(f"x-ratelimit-{name}", "") for name in ("limit", "remaining", "reset")
    ]
    assert all(value.isdigit() for value in values), (reply.status_code, reply.headers)
    limit, remaining, reset = (int(value) for value in values)
    return limit, remaining, reset


def _send(server: Server, token: str, text: str, to: str = "bob", **extra: Any) -> httpx.Response:
    return http.post(
        f"{server.url}/send_message/{to}",
        data={"author": "alice", "message": text, **extra},
        headers=bearer(token),
    )


def test_sends_count_down_to_a_429_that_says_when(app_server: Callable[..., Server]) -> None:
    server = app_server(send_rate_limit="3 per minute")
    alice, bob = register(server.url, "alice"), register(server.url, "bob")
    http.post(f"{server.url}/add_friend", data={"username": "alice"}, headers=bearer(bob))
    seen = []
    for n in range(4):
        reply = _send(server, alice, f"m{n}")
        limit, remaining, reset = _quota(reply)
        seen.append((reply.status_code, limit, remaining))
        assert 1 <= reset <= 60
    assert seen == [(200, 3, 2), (200, 3, 1), (200, 3, 0), (429, 3, 0)]
    assert reply.headers["x-ratelimit-reset"] == reply.headers["retry-after"]
    edit = http.post(
        f"{server.url}/edit_message",
        data={"user_one": "alice", "user_two": "bob", "id": 1, "message": "changed"},
        headers=bearer(alice),
    )
    assert (edit.status_code, *_quota(edit)[:2]) == (429, 3, 0)  # an edit is a send
    # Routes no limit governs carry none, nor a request refused before any limit
    # (nothing is left over from the request before on the same thread).
    me = http.get(f"{server.url}/me", headers=bearer(alice))
    unsigned = http.post(f"{server.url}/send_message/bob", data={"author": "alice", "message": "x"})
    assert (me.status_code, unsigned.status_code) == (200, 401)
    for reply in (me, unsigned):
        assert not [name for name in reply.headers if name.lower().startswith("x-ratelimit")]


def test_a_send_that_opens_a_conversation_reports_the_tighter_limit(
    app_server: Callable[..., Server],
) -> None:
    server = app_server(send_rate_limit="100 per minute", new_conversation_rate_limit="2 per hour")
    alice, _ = register(server.url, "alice"), register(server.url, "bob")
    first = _send(server, alice, "hello, stranger")
    limit, remaining, reset = _quota(first)
    assert (first.status_code, limit, remaining) == (200, 2, 1)  # new conversations: 1 left
    assert 3500 <= reset <= 3600
    second = _send(server, alice, "same conversation")
    assert (second.status_code, *_quota(second)[:2]) == (200, 100, 98)  # only the send rate


def test_logins_show_the_failed_login_budget_of_the_address(
    app_server: Callable[..., Server],
) -> None:
    server = app_server(login_rate_limit="3 per hour")
    register(server.url, "alice")

    def login(password: str) -> httpx.Response:
        return http.post(f"{server.url}/login", data={"username": "alice", "password": password})

    right = login("correct horse")
    assert (right.status_code, *_quota(right)) == (200, 3, 3, 0)  # a right password costs nothing
    wrong = login("nope")
    assert (wrong.status_code, *_quota(wrong)[:2]) == (401, 3, 2)
    assert 3500 <= _quota(wrong)[2] <= 3600
    again = login("correct horse")
    assert (again.status_code, *_quota(again)[:2]) == (200, 3, 2)  # the failure still counts
    login("nope")
    login("nope")
    refused = login("correct horse")
    assert (refused.status_code, *_quota(refused)[:2]) == (429, 3, 0)
    assert refused.headers["x-ratelimit-reset"] == refused.headers["retry-after"]


def test_registrations_count_down_per_address(app_server: Callable[..., Server]) -> None:
    server = app_server(register_rate_limit="2 per hour")
    replies = [
        http.post(f"{server.url}/register", data={"username": name, "password": "correct horse"})
        for name in ("alice", "bob", "carol")
    ]
    assert [(r.status_code, *_quota(r)[:2]) for r in replies] == [
        (201, 2, 1),
        (201, 2, 0),
        (429, 2, 0),
    ]
    assert replies[2].headers["x-ratelimit-reset"] == replies[2].headers["retry-after"]
