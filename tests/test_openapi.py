"""docs/openapi.yaml is generated from protocol/ and valid; it and the app's routes stay in
step, and real replies fit its schemas (errors included, with their real statuses)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from openapi_spec_validator import validate

from protocol.openapi import document, render
from tests.support import Server, bearer, http, register

pytestmark = pytest.mark.both_tiers  # in-process (fast tier) and live

FILE = Path(__file__).parent.parent / "docs" / "openapi.yaml"
SPEC = yaml.safe_load(FILE.read_text())


def test_the_checked_in_file_is_the_generated_one() -> None:
    assert FILE.read_text() == render(), "run `just openapi` (python -m protocol.openapi)"
    assert document() == SPEC  # and it reads back as the document it was written from


def test_it_is_valid_openapi() -> None:
    validate(SPEC)


def app_routes(server: Server) -> set[tuple[str, str]]:
    routes = set()
    for rule in server.app.url_map.iter_rules():
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            routes.add((path, method.lower()))
    return routes


def spec_routes() -> set[tuple[str, str]]:
    return {(path, method) for path, item in SPEC["paths"].items() for method in item}


def test_every_route_is_documented_and_nothing_else(server: Server) -> None:
    assert app_routes(server) == spec_routes()


def test_public_routes_are_exactly_those_without_security(server: Server) -> None:
    documented_public = {
        path
        for path, item in SPEC["paths"].items()
        for op in item.values()
        if op.get("security") == []
    }
    public = set()
    for rule in server.app.url_map.iter_rules():
        if getattr(server.app.view_functions[rule.endpoint], "auth_decision", None) == "public":
            public.add(rule.rule)
    assert documented_public == public


def resolve(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        node: Any = SPEC
        for part in schema["$ref"].lstrip("#/").split("/"):
            node = node[part]
        schema = node
    return schema


def conforms(value: Any, schema: dict[str, Any]) -> None:
    """JSON Schema 2020-12 validation, ``$ref``s resolved inside the document."""
    jsonschema.Draft202012Validator({**schema, "components": SPEC["components"]}).validate(value)


def reply_schema(path: str, method: str, status: int) -> dict[str, Any]:
    responses = SPEC["paths"][path][method]["responses"]
    assert "default" not in responses
    response = resolve(responses[str(status)])  # an undocumented status fails here
    schema: dict[str, Any] = response["content"]["application/json"]["schema"]
    return schema


def reply_headers(path: str, method: str, status: int) -> set[str]:
    """The reply headers the document names for this route and status."""
    response = resolve(SPEC["paths"][path][method]["responses"][str(status)])
    return set(response.get("headers", {}))


HISTORY = "/get_message_history"


def test_replies_match_the_documented_schemas(server: Server) -> None:
    alice, bob = register(server.url, "alice"), register(server.url, "bob")
    pair = {"user_one": "alice", "user_two": "bob"}
    calls = [
        (
            "/send_message/{username}",
            "post",
            "/send_message/bob",
            {"data": {"author": "alice", "message": "x"}},
        ),
        (
            "/get_message_history",
            "post",
            "/get_message_history",
            {"data": {"user_one": "alice", "user_two": "bob"}},
        ),
        (
            "/create_conversation_db",
            "post",
            "/create_conversation_db",
            {"data": {"user_one": "alice", "user_two": "bob"}},
        ),
        ("/friends", "get", "/friends", {}),
        ("/updates", "get", "/updates", {}),
        ("/me", "get", "/me", {}),
        ("/add_friend", "post", "/add_friend", {"data": {"username": "bob"}}),
        ("/mark_read", "post", "/mark_read", {"data": {"username": "bob", "last_read_id": 1}}),
        (
            "/get_message_history",
            "post",
            "/get_message_history",
            {"data": {"user_one": "x_y", "user_two": "bob"}},
        ),
        ("/login", "post", "/login", {"data": {"username": "bob", "password": "correct horse"}}),
        ("/healthz", "get", "/healthz", {}),
        # the conversation features (message 1 is bob's, sent before; 2 is alice's, above)
        ("/edit_message", "post", "/edit_message", {"data": {**pair, "id": 2, "message": "x!"}}),
        ("/edit_message", "post", "/edit_message", {"data": {**pair, "id": 1, "message": "no"}}),
        ("/search_messages", "post", "/search_messages", {"data": {**pair, "q": "x"}}),
        (HISTORY, "post", HISTORY, {"data": {**pair, "after_rev": 0}}),
        (HISTORY, "post", HISTORY, {"data": {**pair, "around_id": 1}}),
        ("/send_message/{username}", "post", "/send_message/bob",
         {"data": {"author": "alice", "message": "re", "reply_to": 1}}),
        ("/delete_message", "post", "/delete_message", {"data": {**pair, "id": 2}}),
        ("/typing", "post", "/typing", {"data": {"username": "bob"}}),
        ("/settings", "post", "/settings", {"data": {"read_receipts": "false"}}),
        ("/settings", "post", "/settings", {}),
        ("/friends", "get", "/friends", {}),
        ("/updates", "get", "/updates", {}),
        ("/tokens", "post", "/tokens", {"data": {"name": "bot", "scopes": "read"}}),
        ("/tokens", "post", "/tokens",
         {"data": {"name": "bot", "scopes": "send", "expires_in": 60}}),
        ("/tokens", "get", "/tokens", {}),
        ("/tokens/revoke", "post", "/tokens/revoke", {"data": {"id": "none-such"}}),
        # files: a file message in a page and in the list; a message without one is a 404
        ("/send_file/{username}", "post", "/send_file/bob",
         {"data": {"author": "alice", "message": "cap"},
          "files": {"file": ("r.pdf", b"%PDF", "application/pdf")}}),
        ("/files", "get", "/files", {"params": pair}),
        (HISTORY, "post", HISTORY, {"data": pair}),
        ("/file/{message_id}", "get", "/file/1", {"params": pair}),
    ]  # fmt: skip
    http.post(
        f"{server.url}/send_message/alice",
        data={"author": "bob", "message": "y"},
        headers=bearer(bob),
    )
    statuses = []
    for spec_path, method, path, kwargs in calls:
        reply = http.request(method, server.url + path, headers=bearer(alice), **kwargs)
        conforms(reply.json(), reply_schema(spec_path, method, reply.status_code))
        documented = reply_headers(spec_path, method, reply.status_code)
        assert "X-Request-Id" in documented and reply.headers.get("X-Request-Id")
        sent = {name for name in SPEC["components"]["headers"] if name in reply.headers}
        assert sent <= documented, (path, reply.status_code, sent - documented)
        statuses.append(reply.status_code)
    assert statuses.count(403) == 1, "only editing bob's message is refused"


def test_a_friend_must_carry_every_key_the_server_always_sends() -> None:
    friend = {"$ref": "#/components/schemas/Friend"}
    full = {
        "username": "bob", "display_name": None, "unread": 0, "last_message": None,
        "deleted": False, "rev": 0, "typing": False, "request": False, "read_up_to": 0,
    }  # fmt: skip
    conforms(full, friend)  # last_message null and no peer_read_up_to: both fine
    for key in full:
        with pytest.raises(jsonschema.ValidationError):
            conforms({k: v for k, v in full.items() if k != key}, friend)
