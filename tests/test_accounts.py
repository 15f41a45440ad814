"""Accounts: register, login, logout, me; secrets never stored in the clear; rate limits."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.support import Server, bearer, http, register

pytestmark = pytest.mark.both_tiers  # in-process (fast tier) and live


def test_register_login_me_logout(server: Server) -> None:
    reply = http.post(
        f"{server.url}/register",
        data={"username": "Alice", "password": "wonderland", "display_name": "Alice L."},
    )
    assert reply.status_code == 201
    body = reply.json()
    assert body["success"] is True and body["username"] == "alice" and body["token"]
    me = http.get(f"{server.url}/me", headers=bearer(body["token"])).json()
    assert me == {"success": True, "username": "alice", "display_name": "Alice L."}
    login = http.post(f"{server.url}/login", data={"username": "ALICE", "password": "wonderland"})
    assert login.status_code == 200
    token = login.json()["token"]
    assert token != body["token"]
    assert http.post(f"{server.url}/logout", headers=bearer(token)).status_code == 200
    assert http.get(f"{server.url}/me", headers=bearer(token)).status_code == 401
    # the other session is untouched
    assert http.get(f"{server.url}/me", headers=bearer(body["token"])).status_code == 200


def test_taken_names_are_409_case_insensitively(server: Server) -> None:
    register(server.url, "bob")
    reply = http.post(f"{server.url}/register", data={"username": "BOB", "password": "another one"})
    assert reply.status_code == 409
    assert reply.json()["error"] == "username_taken"


def test_bad_registrations(server: Server) -> None:
    cases = [
        ({"username": "a_b", "password": "long enough"}, "invalid_username"),
        ({"username": "bob", "password": "short"}, "invalid_field"),
        ({"username": "bob"}, "missing_field"),
        ({"username": "bob", "password": "long enough", "display_name": "x" * 65}, "invalid_field"),
    ]
    for data, code in cases:
        reply = http.post(f"{server.url}/register", data=data)
        assert reply.status_code == 400
        assert reply.json()["error"] == code


def test_wrong_name_or_password_look_the_same(server: Server) -> None:
    register(server.url, "carol")
    wrong_password = http.post(
        f"{server.url}/login", data={"username": "carol", "password": "nope nope"}
    )
    wrong_name = http.post(
        f"{server.url}/login", data={"username": "nobody", "password": "nope nope"}
    )
    assert wrong_password.status_code == wrong_name.status_code == 401
    assert wrong_password.json() == wrong_name.json()


def test_no_password_or_raw_token_in_the_data_folder(server: Server) -> None:
    password = "hunter2-but-longer"
    token = register(server.url, "dave", password)
    login = http.post(f"{server.url}/login", data={"username": "dave", "password": password})
    tokens = [token, login.json()["token"]]
    register(server.url, "erin")
    http.post(
        f"{server.url}/send_message/erin",
        data={"author": "dave", "message": "hello"},
        headers=bearer(token),
    )
    server.stop()  # flush WAL into the files
    blobs = b"".join(p.read_bytes() for p in server.data_dir.iterdir() if p.is_file())
    assert b"hello" in blobs  # the scan does see file contents
    assert password.encode() not in blobs
    for raw in tokens:
        assert raw.encode() not in blobs


def test_failed_logins_are_rate_limited_per_username(
    app_server: Callable[..., Server],
) -> None:
    server = app_server(login_rate_limit="3 per minute")
    register(server.url, "frank", "right password")
    statuses = [
        http.post(
            f"{server.url}/login", data={"username": "frank", "password": "wrong one!"}
        ).status_code
        for _ in range(5)
    ]
    assert statuses == [401, 401, 401, 429, 429]
    reply = http.post(f"{server.url}/login", data={"username": "frank", "password": "wrong one!"})
    assert reply.json()["error"] == "rate_limited"


def test_successful_logins_do_not_count(app_server: Callable[..., Server]) -> None:
    server = app_server(login_rate_limit="2 per minute")
    register(server.url, "gina", "right password")
    for _ in range(5):
        reply = http.post(
            f"{server.url}/login", data={"username": "gina", "password": "right password"}
        )
        assert reply.status_code == 200
