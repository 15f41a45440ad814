"""Security: no secret in any log, size and length limits, the login limit per address,
security headers on every kind of reply (success and error, Werkzeug and granian).

Not repeated here (tested elsewhere): each route's auth decision
(test_auth_matrix.py), the 5 MB form body and the 4,001-character message
(test_hostile_input.py), the per-username login limit and secrets on disk
(test_accounts.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import LiveServer, bearer, register
from tests.test_crash_safety import KillableServer, killable_server

__all__ = ["killable_server"]  # the fixture, imported for these tests

LIMIT = 64 * 1024
HEADERS = {
    "x-content-type-options": "nosniff",
    "cache-control": "no-store",
    "x-frame-options": "DENY",
}


def exercise_secrets(url: str) -> list[str]:
    """Register, log in (right and wrong), send, read, log out, reuse the revoked token.
    Returns every secret that went over the wire."""
    secrets = ["Tr0ub4dor&3-alice", "correct-horse-bob", "wrong-guess-1234"]
    alice = httpx.post(f"{url}/register", data={"username": "alice", "password": secrets[0]})
    bob = httpx.post(f"{url}/register", json={"username": "bob", "password": secrets[1]})
    tokens = [alice.json()["token"], bob.json()["token"]]
    login = httpx.post(f"{url}/login", data={"username": "alice", "password": secrets[0]})
    tokens.append(login.json()["token"])
    failed = httpx.post(f"{url}/login", data={"username": "alice", "password": secrets[2]})
    assert failed.status_code == 401
    for token in tokens:
        reply = httpx.post(
            f"{url}/send_message/bob",
            data={"author": "alice", "message": "hi"},
            headers=bearer(token),
        )
        assert reply.status_code in (200, 403)  # bob's own token may not send as alice
    httpx.get(f"{url}/me", headers=bearer(tokens[1]))
    httpx.post(
        f"{url}/get_message_history",
        data={"user_one": "alice", "user_two": "bob"},
        headers=bearer(tokens[0]),
    )
    assert httpx.post(f"{url}/logout", headers=bearer(tokens[2])).status_code == 200
    assert httpx.get(f"{url}/me", headers=bearer(tokens[2])).status_code == 401  # revoked
    assert httpx.get(f"{url}/me", headers=bearer(tokens[0] + "x")).status_code == 401
    return secrets + tokens


def assert_no_secret(text: str, secrets: list[str]) -> None:
    leaked = [secret for secret in secrets if secret in text]
    assert not leaked, f"in the log: {leaked}"


def test_no_token_or_password_in_the_app_log(
    server: LiveServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # everything any logger emits, at every level
    secrets = exercise_secrets(server.url)
    text = "\n".join(
        f"{r.name} {r.levelname} {r.getMessage()} {r.exc_text or ''}" for r in caplog.records
    )
    assert "POST /login" in text and "GET /me" in text, "the capture sees the request log"
    assert_no_secret(text, secrets)


@pytest.mark.parametrize("mode", ["granian", "dev"])
def test_no_token_or_password_in_the_server_output(
    tmp_path: Path, killable_server: Callable[..., KillableServer], mode: str
) -> None:
    """pairchat-server's own stdout and stderr, as an operator's journal would keep them."""
    args = ("--dev",) if mode == "dev" else ()
    server = killable_server(tmp_path / "data", *args)
    secrets = exercise_secrets(server.url)
    server.stop()
    text = server.log_path.read_text(errors="replace")
    assert "pairchat serving" in text, "the capture sees the server's output"
    if mode == "dev":
        assert "POST /login" in text, "and its request log"
    assert_no_secret(text, secrets)


# -- security headers ----------------------------------------------------------------


@pytest.fixture
def every_kind_of_reply(
    live_server: Callable[..., LiveServer],
) -> Iterator[dict[str, httpx.Response]]:
    server = live_server(login_rate_limit="1 per minute")
    (server.data_dir / "alice_carol.db").write_bytes(b"this is no database" * 100)
    alice = register(server.url, "alice")
    register(server.url, "bob")
    register(server.url, "carol")
    url = server.url
    auth = bearer(alice)
    pair = {"user_one": "alice", "user_two": "bob"}
    replies = {
        "200 health": httpx.get(f"{url}/healthz"),
        "200 history": httpx.post(f"{url}/get_message_history", data=pair, headers=auth),
        "201 register": httpx.post(
            f"{url}/register", data={"username": "dave", "password": "long enough"}
        ),
        "400": httpx.post(f"{url}/get_message_history", data={"user_one": "a_b"}, headers=auth),
        "401": httpx.get(f"{url}/me"),
        "403": httpx.post(
            f"{url}/get_message_history",
            data={"user_one": "bob", "user_two": "carol"},
            headers=auth,
        ),
        "404 route": httpx.get(f"{url}/nope"),
        "404 user": httpx.post(f"{url}/add_friend", data={"username": "zed"}, headers=auth),
        "405": httpx.get(f"{url}/send_message/bob"),
        "413": httpx.post(f"{url}/register", content=b"x" * (LIMIT + 1)),
        "415": httpx.post(
            f"{url}/create_conversation_db",
            content=b"<a/>",
            headers={**auth, "content-type": "text/xml"},
        ),
        "401 login": httpx.post(
            f"{url}/login", data={"username": "alice", "password": "nope nope"}
        ),
        "429": httpx.post(f"{url}/login", data={"username": "alice", "password": "nope nope"}),
        "503": httpx.post(
            f"{url}/get_message_history",
            data={"user_one": "alice", "user_two": "carol"},
            headers=auth,
        ),
        "options": httpx.options(f"{url}/healthz"),
    }
    yield replies


def test_security_headers_on_success_and_error_replies(
    every_kind_of_reply: dict[str, httpx.Response],
) -> None:
    statuses = {name: reply.status_code for name, reply in every_kind_of_reply.items()}
    for name, reply in every_kind_of_reply.items():
        expected = int(name[:3]) if name[0].isdigit() else reply.status_code
        assert reply.status_code == expected, (name, reply.text)
        for header, value in HEADERS.items():
            assert reply.headers.get(header) == value, (name, header, statuses)
        csp = reply.headers.get("content-security-policy", "")
        assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp, name
        if reply.status_code >= 400:
            assert reply.headers["content-type"] == "application/json", name
            assert reply.json()["success"] is False, name


def test_security_headers_under_granian(
    tmp_path: Path, killable_server: Callable[..., KillableServer]
) -> None:
    server = killable_server(tmp_path / "data")
    url = server.url
    token = register(url, "alice")
    replies = [
        httpx.get(f"{url}/me", headers=bearer(token)),
        httpx.get(f"{url}/me"),
        httpx.get(f"{url}/nope"),
        httpx.post(f"{url}/register", content=b"x" * (LIMIT + 1)),
    ]
    assert [r.status_code for r in replies] == [200, 401, 404, 413]
    for reply in replies:
        for header, value in HEADERS.items():
            assert reply.headers.get(header) == value, (reply.status_code, header)


# -- size and length limits ------------------------------------------------------------


def chunked(body: bytes) -> Iterator[bytes]:
    """A body with no Content-Length (Transfer-Encoding: chunked)."""
    for start in range(0, len(body), 8192):
        yield body[start : start + 8192]


def test_body_limit_holds_for_json_chunked_and_unauthenticated_bodies(
    tmp_path: Path,
    server: LiveServer,
    killable_server: Callable[..., KillableServer],
) -> None:
    granian = killable_server(tmp_path / "granian")
    for url in (server.url, granian.url):
        token = register(url, "alice")
        register(url, "bob")
        big = "x" * (LIMIT + 1)
        cases = {
            "json": httpx.post(
                f"{url}/send_message/bob",
                json={"author": "alice", "message": big},
                headers=bearer(token),
            ),
            "chunked form": httpx.post(
                f"{url}/send_message/bob",
                content=chunked(f"author=alice&message={big}".encode()),
                headers={**bearer(token), "content-type": "application/x-www-form-urlencoded"},
                timeout=30,
            ),
            "chunked json": httpx.post(
                f"{url}/login",
                content=chunked(b'{"username": "alice", "password": "' + b"p" * LIMIT + b'"}'),
                headers={"content-type": "application/json"},
                timeout=30,
            ),
            "no token": httpx.post(
                f"{url}/register", data={"username": "eve", "password": big}, timeout=30
            ),
            # over the limit only by its padding: cut at the limit, it would still parse
            "chunked, cut in the message": httpx.post(
                f"{url}/send_message/bob",
                content=chunked(f"author=alice&pad={'p' * 63000}&message={'m' * 3000}".encode()),
                headers={**bearer(token), "content-type": "application/x-www-form-urlencoded"},
                timeout=30,
            ),
        }
        wrong = {
            name: (reply.status_code, reply.text[:90])
            for name, reply in cases.items()
            if reply.status_code != 413 or reply.json()["error"] != "too_large"
        }
        assert not wrong, f"{url}: not 413 too_large: {wrong}"
        stored = httpx.post(
            f"{url}/get_message_history",
            data={"user_one": "alice", "user_two": "bob"},
            headers=bearer(token),
        ).json()["history"]
        assert stored == [], "nothing from a refused body was stored"
        # a body just under the limit is read (and judged on its fields)
        near = httpx.post(
            f"{url}/send_message/bob",
            data={"author": "alice", "message": "y" * (LIMIT - 100)},
            headers=bearer(token),
        )
        assert near.status_code == 400 and near.json()["error"] == "message_too_long"
        assert httpx.get(f"{url}/healthz").status_code == 200


@pytest.mark.parametrize("char", ["é", "😀", "中"])
def test_message_length_counts_characters_not_bytes(open_server: LiveServer, char: str) -> None:
    url = f"{open_server.url}/send_message/bob"
    fits = httpx.post(url, data={"author": "alice", "message": char * 4000})
    assert fits.status_code == 200, fits.text
    too_long = httpx.post(url, json={"author": "alice", "message": char * 4001})
    assert too_long.status_code == 400 and too_long.json()["error"] == "message_too_long"
    history = httpx.post(
        f"{open_server.url}/get_message_history", data={"user_one": "alice", "user_two": "bob"}
    ).json()["history"]
    assert [m["message"] for m in history] == [char * 4000], "stored exactly, once"


def test_failed_logins_are_limited_per_address_across_usernames(
    live_server: Callable[..., LiveServer],
) -> None:
    """Guessing many accounts from one address is stopped too, not just one account."""
    server = live_server(login_rate_limit="3 per minute")
    token = register(server.url, "alice", "right password")
    register(server.url, "bob", "bobs password")
    statuses = [
        httpx.post(
            f"{server.url}/login", data={"username": name, "password": "guess guess"}
        ).status_code
        for name in ("carol", "dave", "erin", "frank")
    ]
    assert statuses == [401, 401, 401, 429]
    # the address is blocked even with a right password: no way to keep guessing
    blocked = httpx.post(
        f"{server.url}/login", data={"username": "bob", "password": "bobs password"}
    )
    assert blocked.status_code == 429 and blocked.json()["error"] == "rate_limited"
    # signed-in clients are not affected
    reply = httpx.post(
        f"{server.url}/send_message/bob",
        data={"author": "alice", "message": "still fine"},
        headers=bearer(token),
    )
    assert reply.status_code == 200
