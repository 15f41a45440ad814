"""Tokens for scripts (issue 24 item 4): ``POST /tokens``, ``GET /tokens``, ``POST /tokens/revoke``.

A script token carries scopes (``read``, ``send``): a route outside its scopes, and
every route that manages the account (the token routes themselves included), is
``403 insufficient_scope``. It never expires for idleness, only at its own
``expires_in``; a revocation ends its open event streams. Real servers only: the app
in-process and on 127.0.0.1 (``both_tiers``), and ``pairchat-server`` itself for a
restart and for ``GET /events``.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from backend.storage import accounts as storage
from tests.pg_server import postgres_server, postgres_url  # noqa: F401
from tests.sse import open_stream
from tests.support import Server, ServerProcess, bearer, http, register


def make_token(server: Any, session: str, scopes: str, **fields: Any) -> dict[str, Any]:
    reply = http.post(
        f"{server.url}/tokens",
        data={"name": fields.pop("name", f"{scopes} bot"), "scopes": scopes, **fields},
        headers=bearer(session),
    )
    assert reply.status_code == 201, reply.text
    made: dict[str, Any] = reply.json()
    return made


def status(server: Any, token: str, method: str, path: str, **data: Any) -> tuple[int, str]:
    reply = http.request(method, server.url + path, data=data or None, headers=bearer(token))
    body = reply.json()
    return reply.status_code, body.get("error", "") if isinstance(body, dict) else ""


def send(server: Any, token: str, text: str = "hi") -> tuple[int, str]:
    return status(server, token, "POST", "/send_message/bob", author="alice", message=text)


def wait_for(condition: Callable[[], bool], within: float = 15.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "the condition never held"
        time.sleep(0.05)


@pytest.mark.both_tiers
def test_a_token_is_shown_once_and_listed_without_its_secret(server: Server) -> None:
    alice = register(server.url, "alice")
    made = make_token(server, alice, "send, read", name="  echo bot  ")
    assert set(made) == {"success", "token", "id", "name", "scopes", "expires_at"}
    assert made["scopes"] == ["read", "send"] and made["name"] == "echo bot"
    assert made["expires_at"] is None and len(made["token"]) >= 43
    timed = make_token(server, alice, "read", expires_in=3600)
    assert timed["expires_at"] >= int(time.time()) + 3590
    listed = http.get(f"{server.url}/tokens", headers=bearer(alice)).json()["tokens"]
    assert sorted((t["id"], t["name"], t["scopes"]) for t in listed) == sorted(
        [(made["id"], "echo bot", ["read", "send"]), (timed["id"], "read bot", ["read"])]
    )
    assert listed == sorted(listed, key=lambda t: (t["created_at"], t["id"])), "oldest first"
    assert set(listed[0]) == {"id", "name", "scopes", "created_at", "last_used", "expires_at"}
    assert made["token"] not in str(listed) and timed["token"] not in str(listed)
    # bob sees none of alice's, and cannot revoke them
    bob = register(server.url, "bob")
    assert http.get(f"{server.url}/tokens", headers=bearer(bob)).json() == {"tokens": []}
    assert status(server, bob, "POST", "/tokens/revoke", id=made["id"]) == (404, "unknown_token")
    assert status(server, made["token"], "GET", "/me")[0] == 200


@pytest.mark.both_tiers
def test_a_read_token_reads_but_cannot_send_nor_manage_tokens(server: Server) -> None:
    alice, bob = register(server.url, "alice"), register(server.url, "bob")
    http.post(
        f"{server.url}/send_message/alice",
        data={"author": "bob", "message": "hello"},
        headers=bearer(bob),
    )
    reader = make_token(server, alice, "read")["token"]
    history = http.post(
        f"{server.url}/get_message_history",
        data={"user_one": "alice", "user_two": "bob"},
        headers=bearer(reader),
    )
    assert history.status_code == 200 and history.json()["history"][0]["message"] == "hello"
    assert status(server, reader, "GET", "/friends")[0] == 200
    assert status(server, reader, "GET", "/updates")[0] == 200
    assert send(server, reader) == (403, "insufficient_scope")
    for method, path, data in (
        ("GET", "/tokens", {}),
        ("POST", "/tokens", {"name": "x", "scopes": "read,send"}),
        ("POST", "/tokens/revoke", {"id": "x"}),
        ("POST", "/logout_all", {}),
        ("POST", "/add_friend", {"username": "bob"}),
    ):
        assert status(server, reader, method, path, **data) == (403, "insufficient_scope"), path
    assert status(server, alice, "GET", "/me")[0] == 200, "nothing was revoked"
    assert [m["author"] for m in history.json()["history"]] == ["bob"], "nothing was sent"


@pytest.mark.both_tiers
def test_a_send_token_sends_but_cannot_read(server: Server) -> None:
    alice = register(server.url, "alice")
    register(server.url, "bob")
    sender = make_token(server, alice, "send")["token"]
    assert send(server, sender, "from a script") == (200, "")
    assert status(server, sender, "GET", "/friends") == (403, "insufficient_scope")
    assert status(server, sender, "GET", "/events") == (403, "insufficient_scope")
    # as alice only, like her session
    assert status(server, sender, "POST", "/send_message/alice", author="bob", message="x") == (
        403,
        "forbidden",
    )
    history = http.post(
        f"{server.url}/get_message_history",
        data={"user_one": "alice", "user_two": "bob"},
        headers=bearer(alice),
    )
    assert [m["message"] for m in history.json()["history"]] == ["from a script"]


@pytest.mark.both_tiers
def test_a_revoked_token_is_signed_out_and_the_others_are_not(server: Server) -> None:
    alice = register(server.url, "alice")
    register(server.url, "bob")
    gone, kept = make_token(server, alice, "read,send"), make_token(server, alice, "send")
    assert status(server, alice, "POST", "/tokens/revoke", id=gone["id"]) == (200, "")
    assert status(server, gone["token"], "GET", "/me") == (401, "unauthorized")
    assert status(server, alice, "POST", "/tokens/revoke", id=gone["id"]) == (404, "unknown_token")
    assert send(server, kept["token"]) == (200, "")
    assert status(server, alice, "GET", "/me")[0] == 200
    listed = http.get(f"{server.url}/tokens", headers=bearer(alice)).json()["tokens"]
    assert [t["id"] for t in listed] == [kept["id"]]


@pytest.mark.both_tiers
@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"scopes": "read"}, "missing_field"),
        ({"name": "", "scopes": "read"}, "missing_field"),
        ({"name": "   ", "scopes": "read"}, "invalid_field"),
        ({"name": "x" * 65, "scopes": "read"}, "invalid_field"),
        ({"name": "tab\tname", "scopes": "read"}, "invalid_field"),
        ({"name": "bot"}, "missing_field"),
        ({"name": "bot", "scopes": "write"}, "invalid_field"),
        ({"name": "bot", "scopes": "read,admin"}, "invalid_field"),
        ({"name": "bot", "scopes": "read,"}, "invalid_field"),
        ({"name": "bot", "scopes": "read", "expires_in": "0"}, "invalid_field"),
        ({"name": "bot", "scopes": "read", "expires_in": "soon"}, "invalid_field"),
    ],
)
def test_the_fields_are_checked(server: Server, fields: dict[str, str], error: str) -> None:
    alice = register(server.url, "alice")
    reply = http.post(f"{server.url}/tokens", data=fields, headers=bearer(alice))
    assert (reply.status_code, reply.json()["error"]) == (400, error), reply.text
    assert http.get(f"{server.url}/tokens", headers=bearer(alice)).json() == {"tokens": []}


@pytest.mark.both_tiers
def test_a_token_with_expires_in_stops_working_when_it_passes(server: Server) -> None:
    alice = register(server.url, "alice")
    made = make_token(server, alice, "read", expires_in=2)
    forever = make_token(server, alice, "read")
    assert status(server, made["token"], "GET", "/me")[0] == 200
    wait_for(lambda: status(server, made["token"], "GET", "/me")[0] == 401)
    assert int(time.time()) >= made["expires_at"]
    reply = http.get(f"{server.url}/me", headers=bearer(made["token"]))
    assert reply.json() == {
        "success": False,
        "error": "unauthorized",
        "message": "the token expired; make a new one",
    }
    assert status(server, forever["token"], "GET", "/me")[0] == 200


@pytest.mark.both_tiers
def test_a_script_token_does_not_expire_for_idleness(app_server: Callable[..., Server]) -> None:
    server = app_server(token_idle_timeout=1)
    alice = register(server.url, "alice")
    script = make_token(server, alice, "read")
    session = http.post(
        f"{server.url}/login", data={"username": "alice", "password": "correct horse"}
    ).json()["token"]
    made = int(time.time())
    wait_for(lambda: int(time.time()) >= made + 3)  # both unused for over the idle time
    assert status(server, session, "GET", "/me") == (401, "unauthorized"), "the session idled out"
    assert status(server, script["token"], "GET", "/me") == (200, "")


def test_script_tokens_survive_a_restart(
    server_process: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    server = server_process(data_dir=tmp_path / "data")
    alice = register(server.url, "alice")
    register(server.url, "bob")
    made = make_token(server, alice, "read,send", expires_in=3600)
    server.kill()  # SIGKILL: nothing flushed on the way out
    again = server_process(data_dir=tmp_path / "data")
    assert send(again, made["token"]) == (200, "")
    assert status(again, made["token"], "GET", "/tokens") == (403, "insufficient_scope")
    listed = http.get(f"{again.url}/tokens", headers=bearer(alice)).json()["tokens"]
    assert [(t["id"], t["expires_at"]) for t in listed] == [(made["id"], made["expires_at"])]


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=httpx.Timeout(10.0)) as streaming:
        yield streaming


def test_a_read_token_streams_events_and_revoking_it_ends_the_stream(
    server_process: Callable[..., ServerProcess], client: httpx.Client
) -> None:
    server = server_process(env={"PAIRCHAT_STREAM_HEARTBEAT": "0.3"})
    alice, bob = register(server.url, "alice"), register(server.url, "bob")
    reader = make_token(server, alice, "read")
    with open_stream(client, server.url, reader["token"]) as stream:
        assert stream.response.status_code == 200
        assert stream.next().kind == "feed"
        http.post(
            f"{server.url}/send_message/alice",
            data={"author": "bob", "message": "for the bot"},
            headers=bearer(bob),
        )
        change = stream.next()
        assert change.kind == "feed" and change.data["changed"][0]["username"] == "bob"
        revoked = http.post(
            f"{server.url}/tokens/revoke", data={"id": reader["id"]}, headers=bearer(alice)
        )
        assert revoked.status_code == 200
        end = stream.next()
        assert end.kind == "end" and end.data["reason"] == "unauthorized"
    assert status(server, alice, "GET", "/me")[0] == 200, "her session stays"


def test_an_accounts_file_of_version_5_keeps_its_sessions(tmp_path: Path) -> None:
    """The upgrade to version 6 adds the script token columns; a token of before stays a
    full session token (no scopes, no expiry)."""
    tmp_path.mkdir(exist_ok=True)
    conn = sqlite3.connect(tmp_path / storage.ACCOUNTS_FILE, isolation_level=None)
    conn.execute("BEGIN")
    for migration in storage.MIGRATIONS[:5]:
        migration(conn)
    conn.execute("PRAGMA user_version = 5")
    conn.execute("COMMIT")
    conn.execute("INSERT INTO users (username, password_hash, created_at) VALUES ('al', 'x', 0)")
    conn.execute(
        "INSERT INTO tokens (token_hash, username, created_at, last_used) VALUES ('h', 'al', 5, 5)"
    )
    conn.close()
    store = storage.AccountStore(tmp_path)
    try:
        token = store.token("h")
        assert token is not None and token.scopes is None and token.expires_at is None
        assert store.script_tokens("al") == []
    finally:
        store.close()


# -- the store on both engines (SQLite file, and PostgreSQL for multi-node mode) -------------
@pytest.mark.live
@pytest.mark.parametrize("engine", ["sqlite", "postgres"])
def test_the_store_keeps_script_tokens_on_both_engines(
    engine: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = request.getfixturevalue("postgres_url") if engine == "postgres" else ""
    store, other_node = (storage.open_account_store(tmp_path, database_url=url) for _ in "ab")
    try:
        for name in ("alice", "bob"):
            assert store.add_user(name, None, f"hash-{name}", 1000)
        store.add_token("session", "alice", 100)
        assert store.add_script_token("h1", "id1", "alice", "bot", "read,send", 100, None, 2)
        assert store.add_script_token("h2", "id2", "alice", "cron", "read", 101, 500, 2)
        assert not store.add_script_token("h3", "id3", "alice", "one more", "read", 102, None, 2)
        assert store.token("h3") is None, "past the limit nothing is added"
        found = store.token("h2")
        assert found is not None and (found.username, found.scopes, found.expires_at) == (
            "alice",
            "read",
            500,
        )
        session = store.token("session")
        assert session is not None and session.scopes is None and session.expires_at is None
        assert [(t.token_id, t.name, t.scopes) for t in other_node.script_tokens("alice")] == [
            ("id1", "bot", "read,send"),
            ("id2", "cron", "read"),
        ]
        assert store.script_tokens("bob") == []
        epoch = other_node.account_epoch()
        assert not store.revoke_script_token("bob", "id1"), "only the owner's"
        assert not store.revoke_script_token("alice", "nope")
        assert other_node.account_epoch() == epoch, "nothing revoked, nothing to recheck"
        assert store.revoke_script_token("alice", "id1")
        assert other_node.account_epoch() == epoch + 1, "every node rechecks its streams"
        assert store.token("h1") is None and store.token("session") is not None
    finally:
        store.close()
        other_node.close()


@pytest.mark.live
def test_a_postgres_database_of_version_5_gains_the_columns(
    postgres_url: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    import psycopg

    from backend.storage.accounts_pg_schema import SCHEMA_VERSION

    store = storage.open_account_store(tmp_path, database_url=postgres_url)
    assert store.add_user("alice", None, "h", 1)
    store.add_token("old", "alice", 7)
    store.close()
    with psycopg.connect(postgres_url, autocommit=True) as conn:  # as version 5 left it
        for column in ("token_id", "name", "scopes", "expires_at"):
            conn.execute(f"ALTER TABLE tokens DROP COLUMN {column}")  # type: ignore[arg-type]
        conn.execute("UPDATE schema_version SET version = 5")
    store = storage.open_account_store(tmp_path, database_url=postgres_url)
    try:
        old = store.token("old")
        assert old is not None and old.scopes is None
        assert store.add_script_token("h", "id", "alice", "bot", "send", 9, None, 50)
        assert [t.token_id for t in store.script_tokens("alice")] == ["id"]
    finally:
        store.close()
    with psycopg.connect(postgres_url) as conn:
        assert conn.execute("SELECT version FROM schema_version").fetchone() == (SCHEMA_VERSION,)


def test_a_revocation_in_either_worker_ends_the_streams_held_by_either(
    server_process: Callable[..., ServerProcess], client: httpx.Client
) -> None:
    """Two workers: revoking a script token moves the accounts epoch in the same
    transaction, which every worker's watcher notices."""
    # six streams of one user: above the per-user cap of 4 whenever five land on one
    # worker, which would end the oldest ("replaced"); the cap is not what this tests
    env = {"PAIRCHAT_STREAM_HEARTBEAT": "0.3", "PAIRCHAT_MAX_WAITS_PER_USER": "8"}
    server = server_process("--workers", "2", env=env)
    alice = register(server.url, "alice")
    made = [make_token(server, alice, "read") for _ in range(6)]
    with contextlib.ExitStack() as held:
        streams = [held.enter_context(open_stream(client, server.url, m["token"])) for m in made]
        for stream in streams:
            assert stream.next().kind == "feed"
        for token, stream in zip(made, streams, strict=True):
            revoked = http.post(
                f"{server.url}/tokens/revoke", data={"id": token["id"]}, headers=bearer(alice)
            )
            assert revoked.status_code == 200
            end = stream.next()
            assert end.kind == "end" and end.data["reason"] == "unauthorized"


def test_an_expired_tokens_stream_ends_at_its_next_event(
    server_process: Callable[..., ServerProcess], client: httpx.Client
) -> None:
    server = server_process(env={"PAIRCHAT_STREAM_HEARTBEAT": "0.3"})
    alice, bob = register(server.url, "alice"), register(server.url, "bob")
    made = make_token(server, alice, "read", expires_in=2)
    with open_stream(client, server.url, made["token"]) as stream:
        assert stream.next().kind == "feed"
        wait_for(lambda: status(server, made["token"], "GET", "/me")[0] == 401)
        http.post(
            f"{server.url}/send_message/alice",
            data={"author": "bob", "message": "after its time"},
            headers=bearer(bob),
        )
        end = stream.next()
        assert end.kind == "end" and end.data["reason"] == "unauthorized"
        assert "expired" in end.data["message"]
