"""docs/openapi.yaml and the app's routes stay in step, and replies match its schemas."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support import Server, bearer, http, register

pytestmark = pytest.mark.both_tiers  # in-process (fast tier) and live

SPEC = yaml.safe_load((Path(__file__).parent.parent / "docs" / "openapi.yaml").read_text())


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
    """A small structural check: required keys, types, array items."""
    schema = resolve(schema)
    if value is None:
        assert schema.get("nullable") or ("type" not in schema and "allOf" in schema), schema
        return
    for sub in schema.get("allOf", []):
        conforms(value, sub)
    kind = schema.get("type")
    if kind == "object":
        assert isinstance(value, dict)
        for key in schema.get("required", []):
            assert key in value, f"missing {key}"
        for key, sub in schema.get("properties", {}).items():
            if key in value:
                conforms(value[key], sub)
    elif kind == "array":
        assert isinstance(value, list)
        for item in value:
            conforms(item, schema["items"])
    elif kind == "integer":
        assert isinstance(value, int) and not isinstance(value, bool)
    elif kind == "string":
        assert isinstance(value, str)
    elif kind == "boolean":
        assert isinstance(value, bool)


def reply_schema(path: str, method: str, status: int) -> dict[str, Any]:
    responses = SPEC["paths"][path][method]["responses"]
    response = resolve(responses.get(str(status)) or responses["default"])
    schema: dict[str, Any] = response["content"]["application/json"]["schema"]
    return schema


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
        statuses.append(reply.status_code)
    assert statuses.count(403) == 1, "only editing bob's message is refused"
