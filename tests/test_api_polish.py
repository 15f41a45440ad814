"""Small refusals that say what is wrong (issue 24's "smaller" findings)."""

from __future__ import annotations

import pytest

from tests.support import Server, bearer, http

pytestmark = pytest.mark.both_tiers


def test_a_405_says_which_methods_are_allowed(server: Server, users: dict[str, str]) -> None:
    reply = http.get(f"{server.url}/settings", headers=bearer(users["alice"]))
    assert reply.status_code == 405 and reply.json()["error"] == "method_not_allowed"
    assert "POST" in reply.headers["allow"].split(", ")


def test_a_history_wait_without_a_cursor_is_refused_not_ignored(
    server: Server, users: dict[str, str]
) -> None:
    pair = {"user_one": "alice", "user_two": "bob"}
    reply = http.post(
        f"{server.url}/get_message_history",
        data={**pair, "limit": 5, "wait": 10},
        headers=bearer(users["alice"]),
    )
    assert reply.status_code == 400 and reply.json()["error"] == "invalid_field"
    assert "after_id" in reply.json()["message"]
    seed = http.post(f"{server.url}/get_message_history", data=pair, headers=bearer(users["alice"]))
    assert seed.status_code == 200, "the seed's request, with no wait, is unchanged"


@pytest.mark.parametrize(("message", "code"), [(5, "invalid_field"), (None, "missing_field")])
def test_a_message_that_is_not_text_is_named_as_such(
    server: Server, users: dict[str, str], message: object, code: str
) -> None:
    body = {"author": "alice"} if message is None else {"author": "alice", "message": message}
    reply = http.post(f"{server.url}/send_message/bob", json=body, headers=bearer(users["alice"]))
    assert reply.status_code == 400 and reply.json()["error"] == code, reply.text
