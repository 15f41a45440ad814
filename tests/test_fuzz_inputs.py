"""Fuzzing every route with what broke it before (issue 11): nested JSON, Unicode digits,
invalid UTF-8 — as JSON, form, multipart and query strings.

Hypothesis draws field values from strategies that mix valid-looking values
with the hostile ones and sends them to every route of docs/openapi.yaml, in
every body encoding, through the real app over real SQLite files (in-process:
the fast tier). No reply may be a 5xx, and every error is the JSON error of
docs/api.md. (``test_fuzz_api.py`` fuzzes the same routes from the spec's schemas
over real HTTP.)
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote_from_bytes

import httpx
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backend.http.auth import DOOR_HEADER
from tests.support import REPO, InProcessServer, bearer, client, http, register, settings_for

SOAK = os.environ.get("PAIRCHAT_SOAK") == "1"
SPEC = yaml.safe_load((REPO / "docs" / "openapi.yaml").read_text())
ROUTES = sorted(
    (method.upper(), path.replace("{username}", "bob").replace("{message_id}", "1"))
    for path, item in SPEC["paths"].items()
    for method in item
)
FIELDS = [
    "user_one", "user_two", "author", "message", "username", "password", "new_password",
    "after_id", "before_id", "limit", "wait", "since", "last_read_id", "client_id",
    "display_name", "invite", "id", "after_rev", "around_id", "reply_to", "q",
    "read_receipts", "typing", "public_key", "ticket", "code", "fingerprint",
]  # fmt: skip

unicode_digits = st.text(st.characters(categories=["Nd", "No"]), min_size=1, max_size=6)
ascii_numbers = st.integers(-(2**70), 2**70).map(str)
names = st.sampled_from(["alice", "bob", "fuzzer", "Alice", "a_b", "../x", ""])
nested = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=20,
)
text_values = unicode_digits | ascii_numbers | names | st.text(max_size=40)
json_values = text_values | nested | st.floats(allow_nan=True) | st.integers()
_fresh = itertools.count()
raw_bytes = st.binary(max_size=12) | st.just(b"\xff\xfe") | st.just(b"\xed\xa0\x80")


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[InProcessServer, str]]:
    folder: Path = tmp_path_factory.mktemp("fuzz-inputs") / "data"
    server = InProcessServer(
        settings_for(folder, max_wait=0.01, login_rate_limit="1000000 per minute")
    ).start()
    token = register(server.url, "fuzzer")
    register(server.url, "alice")
    yield server, token
    server.stop()


def deep_json(depth: int) -> bytes:
    return b'{"username":' * depth + b'"x"' + b"}" * depth


def _check(reply: httpx.Response) -> None:
    assert reply.status_code < 500, (reply.status_code, reply.text[:300])
    assert reply.headers["content-type"] == "application/json"
    body = reply.json()
    if reply.status_code >= 400:
        assert body["success"] is False and body["error"] and body["message"]


def _request(
    server: InProcessServer, token: str, method: str, path: str, kind: str, fields: dict[str, Any]
) -> httpx.Response:
    headers = bearer(token)
    if path == "/door/session":  # the door's secret, so the key parser sees the fields
        assert server.services is not None
        headers[DOOR_HEADER] = server.services.ssh_identity.secret()
    url = server.url + path
    with client() as session:
        if method == "GET" or kind == "query":
            query = "&".join(
                f"{quote_from_bytes(name.encode())}={quote_from_bytes(_bytes(value))}"
                for name, value in fields.items()
            )
            request = session.build_request(method, f"{url}?{query}", headers=headers)
            reply = session.send(request, stream=True)
            if reply.headers.get("content-type", "").startswith("text/event-stream"):
                opening = next(reply.iter_lines())  # /events: a 200 never ends
                reply.close()
                assert reply.status_code == 200 and opening.startswith("retry: ")
                return httpx.Response(200, json={"stream": "opened"}, request=request)
            reply.read()
            return reply
        if kind == "json":
            body = json.dumps(fields, allow_nan=True).encode()
            return session.request(
                method, url, content=body, headers={**headers, "content-type": "application/json"}
            )
        if kind == "form":
            body = b"&".join(
                quote_from_bytes(name.encode()).encode()
                + b"="
                + quote_from_bytes(_bytes(value)).encode()
                for name, value in fields.items()
            )
            return session.request(
                method,
                url,
                content=body,
                headers={**headers, "content-type": "application/x-www-form-urlencoded"},
            )
        parts = b"".join(
            b'--B\r\nContent-Disposition: form-data; name="'
            + name.encode()
            + b'"\r\n\r\n'
            + _bytes(value)
            + b"\r\n"
            for name, value in fields.items()
        )
        return session.request(
            method,
            url,
            content=parts + b"--B--\r\n",
            headers={**headers, "content-type": "multipart/form-data; boundary=B"},
        )


def _bytes(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass")
    return json.dumps(value, allow_nan=True).encode()


@settings(
    max_examples=400 if SOAK else 60,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
@given(
    route=st.sampled_from(ROUTES),
    kind=st.sampled_from(["json", "form", "multipart", "query"]),
    data=st.data(),
)
def test_no_route_answers_a_5xx_to_hostile_fields(
    app: tuple[InProcessServer, str], route: tuple[str, str], kind: str, data: st.DataObject
) -> None:
    server, token = app
    method, path = route
    if path in ("/logout", "/logout_all", "/change_password", "/delete_account"):
        token = register(server.url, f"spent{next(_fresh)}")  # these end their session
    chosen = data.draw(st.lists(st.sampled_from(FIELDS), max_size=6, unique=True))
    values = json_values if kind == "json" else (text_values | raw_bytes)
    fields = {name: data.draw(values) for name in chosen}
    _check(_request(server, token, method, path, kind, fields))


@pytest.mark.parametrize("method,path", ROUTES, ids=[f"{m} {p}" for m, p in ROUTES])
def test_json_nested_past_the_parser_limit_is_400_on_every_route(
    app: tuple[InProcessServer, str], method: str, path: str
) -> None:
    server, token = app
    if method == "GET":
        return_code = http.get(
            f"{server.url}{path}?since=" + "%C2%B2" * 3, headers=bearer(token)
        ).status_code
        assert return_code in (200, 400)
        return
    reads_no_fields = path in ("/logout", "/logout_all", "/keys/link_code")
    if path in ("/logout", "/logout_all"):
        token = register(server.url, f"spent{next(_fresh)}")
    headers = {**bearer(token), "content-type": "application/json"}
    if path == "/door/session":
        assert server.services is not None
        headers[DOOR_HEADER] = server.services.ssh_identity.secret()
    reply = http.request(
        method,
        server.url + path,
        content=deep_json(4_000),  # 52 KB: under the body limit, past the parser's depth
        headers=headers,
    )
    _check(reply)
    if path.startswith("/send_file/"):  # a file comes as multipart/form-data only
        assert reply.status_code == 415, reply.text
        return
    assert reply.status_code == (200 if reads_no_fields else 400), reply.text
