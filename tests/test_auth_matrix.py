"""Every route x every kind of token, built from the app's URL map.

A route added without an auth decision, or without a row here, fails this test.
Script tokens (``POST /tokens``) are kinds of their own: a ``read`` one passes
only the routes of ``READ``, a ``send`` one only those of ``SEND``, and every other
route that takes a token is ``403 insufficient_scope`` to both.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import pytest

from tests.support import Server, bearer, http, register

pytestmark = pytest.mark.both_tiers  # in-process (fast tier) and live

_names = itertools.count()
Request = tuple[str, str, dict[str, Any]]


def _fresh_name() -> str:
    return f"newbie{next(_names)}"


# endpoint -> (auth decision, request maker for alice, expected success status)
ROUTES: dict[str, tuple[str, Callable[[], Request], int]] = {
    "conversations.create_conversation_db": (
        "conversation",
        lambda: (
            "POST",
            "/create_conversation_db",
            {"data": {"user_one": "alice", "user_two": "bob"}},
        ),
        200,
    ),
    "conversations.get_message_history": (
        "conversation",
        lambda: (
            "POST",
            "/get_message_history",
            {"data": {"user_one": "bob", "user_two": "alice"}},
        ),
        200,
    ),
    "conversations.send_message": (
        "conversation",
        lambda: ("POST", "/send_message/bob", {"data": {"author": "alice", "message": "hi"}}),
        200,
    ),
    # message 1 of alice and bob is alice's (``test_matrix`` sends it first)
    "conversations.edit_message": (
        "conversation",
        lambda: (
            "POST",
            "/edit_message",
            {"data": {"user_one": "alice", "user_two": "bob", "id": "1", "message": "hi!"}},
        ),
        200,
    ),
    "conversations.delete_message": (
        "conversation",
        lambda: (
            "POST",
            "/delete_message",
            {"data": {"user_one": "bob", "user_two": "alice", "id": "1"}},
        ),
        200,
    ),
    "conversations.react": (
        "conversation",
        lambda: (
            "POST",
            "/react",
            {
                "data": {
                    "user_one": "alice",
                    "user_two": "bob",
                    "id": "1",
                    "emoji": "👍",
                    "username": "alice",
                }
            },
        ),
        200,
    ),
    "conversations.search_messages": (
        "conversation",
        lambda: (
            "POST",
            "/search_messages",
            {"data": {"user_one": "alice", "user_two": "bob", "q": "first"}},
        ),
        200,
    ),
    "files.send_file": (
        "conversation",
        lambda: (
            "POST",
            "/send_file/bob",
            {"data": {"author": "alice"}, "files": {"file": ("a.txt", b"hi")}},
        ),
        200,
    ),
    # message 1 carries no file: the pair may ask, and is told so
    "files.get_file": (
        "conversation",
        lambda: ("GET", "/file/1", {"params": {"user_one": "alice", "user_two": "bob"}}),
        404,
    ),
    "files.list_files": (
        "conversation",
        lambda: ("GET", "/files", {"params": {"user_one": "bob", "user_two": "alice"}}),
        200,
    ),
    "accounts.register": (
        "public",
        lambda: (
            "POST",
            "/register",
            {"data": {"username": _fresh_name(), "password": "long enough"}},
        ),
        201,
    ),
    "accounts.login": (
        "public",
        lambda: ("POST", "/login", {"data": {"username": "alice", "password": "correct horse"}}),
        200,
    ),
    "accounts.logout": ("user", lambda: ("POST", "/logout", {}), 200),
    "accounts.me": ("user", lambda: ("GET", "/me", {}), 200),
    "accounts.logout_all": ("user", lambda: ("POST", "/logout_all", {}), 200),
    "accounts.change_password": (
        "user",
        lambda: (
            "POST",
            "/change_password",
            {"data": {"password": "correct horse", "new_password": "correct horse"}},
        ),
        200,
    ),
    "accounts.delete_account": (
        "user",
        lambda: ("POST", "/delete_account", {"data": {"password": "correct horse"}}),
        200,
    ),
    "friends.add_friend": (
        "user",
        lambda: ("POST", "/add_friend", {"data": {"username": "bob"}}),
        200,
    ),
    "friends.remove_friend": (
        "user",
        lambda: ("POST", "/remove_friend", {"data": {"username": "bob"}}),
        200,
    ),
    "friends.block_friend": (
        "user",
        lambda: ("POST", "/block_friend", {"data": {"username": "dave"}}),
        200,
    ),
    "friends.unblock_friend": (
        "user",
        lambda: ("POST", "/unblock_friend", {"data": {"username": "dave"}}),
        200,
    ),
    "friends.friends": ("user", lambda: ("GET", "/friends", {}), 200),
    "friends.mark_read": (
        "user",
        lambda: ("POST", "/mark_read", {"data": {"username": "bob", "last_read_id": "0"}}),
        200,
    ),
    "friends.updates": ("user", lambda: ("GET", "/updates", {}), 200),
    "events.events": ("user", lambda: ("GET", "/events", {}), 200),
    "presence.typing": (
        "user",
        lambda: ("POST", "/typing", {"data": {"username": "bob"}}),
        200,
    ),
    "presence.settings": (
        "user",
        lambda: ("POST", "/settings", {"data": {"typing": "true"}}),
        200,
    ),
    "health.healthz": ("public", lambda: ("GET", "/healthz", {}), 200),
    "tokens.create_token": (
        "user",
        lambda: ("POST", "/tokens", {"data": {"name": "a bot", "scopes": "read,send"}}),
        201,
    ),
    "tokens.list_tokens": ("user", lambda: ("GET", "/tokens", {}), 200),
    "tokens.revoke_token": (
        "user",
        lambda: ("POST", "/tokens/revoke", {"data": {"id": "0123456789abcdef"}}),
        404,
    ),
    # the SSH door: its secret, never a token (tests/test_door_identity.py shows the 200s)
    "door.session": (
        "door",
        lambda: ("POST", "/door/session", {"data": {"public_key": "ssh-ed25519 AAAA"}}),
        200,
    ),
    # a ticket is the credential: any token, or none, gets the same answer
    "door.claim": (
        "public",
        lambda: ("POST", "/door/claim", {"data": {"ticket": "t" * 43, "username": "eve"}}),
        400,
    ),
    "door.link": (
        "public",
        lambda: ("POST", "/door/link", {"data": {"ticket": "t" * 43, "code": "ABCD-EFGH"}}),
        400,
    ),
    "door.link_code": ("user", lambda: ("POST", "/keys/link_code", {}), 200),
    "door.keys": ("user", lambda: ("GET", "/keys", {}), 200),
    "door.remove_key": (
        "user",
        lambda: ("POST", "/keys/remove", {"data": {"fingerprint": "SHA256:" + "A" * 43}}),
        404,
    ),
}

# what a script token of each scope may use; every other route needs a session token
READ = {
    "friends.friends",
    "friends.updates",
    "events.events",
    "conversations.get_message_history",
    "conversations.search_messages",
    "files.get_file",
    "files.list_files",
    "accounts.me",
}
SEND = {
    "conversations.send_message",
    "files.send_file",
    "conversations.edit_message",
    "conversations.delete_message",
    "conversations.react",
    "conversations.create_conversation_db",
    "presence.typing",
    "friends.mark_read",
}
SCRIPT_KINDS = {"read": READ, "send": SEND}
# the script kinds before "own": alice's own token may delete her account
KINDS = ["none", "malformed", "revoked", "other", "read", "send", "own"]


def expected(endpoint: str, decision: str, kind: str, ok: int, open_mode: bool) -> int:
    if decision == "public":
        return ok
    if decision == "door":
        return 401  # no door secret here, whatever the token
    if kind in SCRIPT_KINDS:
        return ok if endpoint in SCRIPT_KINDS[kind] else 403
    if kind == "none":
        return ok if decision == "conversation" and open_mode else 401
    if kind in ("malformed", "revoked"):
        return 401
    if kind == "other":
        return 403 if decision == "conversation" else ok
    return ok


def headers_for(server: Server, kind: str) -> dict[str, str]:
    def login(name: str) -> str:
        reply = http.post(
            f"{server.url}/login", data={"username": name, "password": "correct horse"}
        )
        token: str = reply.json()["token"]
        return token

    if kind == "none":
        return {}
    if kind == "malformed":
        return {"Authorization": "Token abc"}
    if kind in SCRIPT_KINDS:
        made = http.post(
            f"{server.url}/tokens",
            data={"name": f"{kind} script", "scopes": kind},
            headers=bearer(login("alice")),
        )
        assert made.status_code == 201, made.text
        return bearer(made.json()["token"])
    if kind == "revoked":
        token = login("alice")
        assert http.post(f"{server.url}/logout", headers=bearer(token)).status_code == 200
        return bearer(token)
    return bearer(login("carol" if kind == "other" else "alice"))


def test_every_route_has_a_decision_and_a_row_here(server: Server) -> None:
    endpoints = {rule.endpoint for rule in server.app.url_map.iter_rules()}
    assert endpoints == set(ROUTES), "a route was added or removed: decide its auth and add it here"
    for endpoint, (decision, _, _) in ROUTES.items():
        view = server.app.view_functions[endpoint]
        assert getattr(view, "auth_decision", None) == decision, endpoint


@pytest.mark.parametrize("open_mode", [False, True], ids=["auth", "open"])
@pytest.mark.parametrize("endpoint", sorted(ROUTES))
def test_matrix(app_server: Callable[..., Server], endpoint: str, open_mode: bool) -> None:
    server = app_server(open_mode=open_mode)
    tokens = {name: register(server.url, name) for name in ("alice", "bob", "carol", "dave")}
    first = http.post(
        f"{server.url}/send_message/bob",
        data={"author": "alice", "message": "the first message"},
        headers=bearer(tokens["alice"]),
    )
    assert first.json()["id"] == 1
    decision, make, ok = ROUTES[endpoint]
    for kind in KINDS:
        method, path, kwargs = make()
        want = expected(endpoint, decision, kind, ok, open_mode)
        headers = headers_for(server, kind)
        if endpoint == "events.events" and want == 200:
            # an endless stream: its opening is the success (tests/test_event_stream.py)
            with http.stream(method, server.url + path, headers=headers, **kwargs) as stream:
                assert stream.status_code == 200
                assert stream.headers["content-type"] == "text/event-stream; charset=utf-8"
                assert next(stream.iter_lines()).startswith("retry: ")
            continue
        reply = http.request(method, server.url + path, headers=headers, **kwargs)
        assert reply.status_code == want, f"{endpoint} with {kind} token: {reply.text}"
        assert reply.headers["content-type"] == "application/json"
        if want >= 400:
            body = reply.json()
            assert body["success"] is False and body["error"] and body["message"]
            if kind in SCRIPT_KINDS and want == 403:
                assert body["error"] == "insufficient_scope", endpoint
            assert "history" not in body and "friends" not in body


def test_forbidden_reveals_nothing(server: Server, users: dict[str, str]) -> None:
    http.post(
        f"{server.url}/send_message/bob",
        data={"author": "alice", "message": "secret"},
        headers=bearer(users["alice"]),
    )
    for data in (
        {"user_one": "alice", "user_two": "bob"},
        {"user_one": "alice", "user_two": "nobody"},
    ):
        reply = http.post(
            f"{server.url}/get_message_history", data=data, headers=bearer(users["carol"])
        )
        assert reply.status_code == 403
        assert reply.json() == {
            "success": False,
            "error": "forbidden",
            "message": "you can only use your own conversations",
        }


def test_cannot_send_in_someone_elses_name(server: Server, users: dict[str, str]) -> None:
    reply = http.post(
        f"{server.url}/send_message/bob",
        data={"author": "alice", "message": "impostor"},
        headers=bearer(users["carol"]),
    )
    assert reply.status_code == 403
    assert not (server.data_dir / "alice_bob.db").exists()


def test_conversation_only_with_an_existing_account(server: Server, users: dict[str, str]) -> None:
    reply = http.post(
        f"{server.url}/send_message/ghost",
        data={"author": "alice", "message": "anyone?"},
        headers=bearer(users["alice"]),
    )
    assert reply.status_code == 404
    assert reply.json()["error"] == "unknown_user"
    assert not list(server.data_dir.glob("*.db"))
