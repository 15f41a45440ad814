"""Every 429 says when to come back: ``Retry-After`` in whole seconds, the limiter's real wait.

(A full server's 503 carries it too: tests/test_event_stream.py.)
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.support import Server, bearer, http, register

pytestmark = pytest.mark.both_tiers


def _retry_after(reply: object) -> int:
    value = reply.headers["retry-after"]  # type: ignore[attr-defined]
    assert value.isdigit(), value
    return int(value)


def test_a_send_past_the_rate_says_when(app_server: Callable[..., Server]) -> None:
    server = app_server(send_rate_limit="2 per minute")
    alice, _ = register(server.url, "alice"), register(server.url, "bob")
    statuses = []
    for n in range(3):
        reply = http.post(
            f"{server.url}/send_message/bob",
            data={"author": "alice", "message": f"m{n}"},
            headers=bearer(alice),
        )
        statuses.append(reply.status_code)
    assert statuses == [200, 200, 429]
    assert 1 <= _retry_after(reply) <= 60


def test_wrong_passwords_past_the_limit_say_when(app_server: Callable[..., Server]) -> None:
    server = app_server(login_rate_limit="2 per hour")
    register(server.url, "alice")
    for _ in range(2):
        wrong = http.post(f"{server.url}/login", data={"username": "alice", "password": "nope"})
        assert wrong.status_code == 401
    refused = http.post(f"{server.url}/login", data={"username": "alice", "password": "nope"})
    assert refused.status_code == 429
    assert 3000 <= _retry_after(refused) <= 3600


def test_registrations_past_the_limit_say_when(app_server: Callable[..., Server]) -> None:
    server = app_server(register_rate_limit="1 per hour")
    register(server.url, "alice")
    refused = http.post(
        f"{server.url}/register", data={"username": "bob", "password": "correct horse"}
    )
    assert refused.status_code == 429
    assert 3000 <= _retry_after(refused) <= 3600
