"""docs/openapi.yaml, generated from the models and the route table.

``python -m protocol.openapi > docs/openapi.yaml`` (or ``just openapi``) writes it;
tests/test_openapi.py fails when the checked-in file differs from what this prints,
and validates it with openapi-spec-validator. OpenAPI 3.1, so a field that may be
``null`` is JSON Schema's ``anyOf [..., {"type": "null"}]``. A property is
``required`` when the server always sends it: every field not typed ``| UnsetType``.
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any

import msgspec

from protocol import models as m
from protocol.routes import ROUTES, Route

REF = "#/components/schemas/{name}"
FORM = "application/x-www-form-urlencoded"
JSON = "application/json"

STATUS_NAMES = {
    400: ("BadRequest", "400 bad input: a field, a username, a message, a body that is not "
          "UTF-8 form data or a JSON object"),
    401: ("Unauthorized", "401 no, malformed, unknown, revoked or expired token; a wrong login"),
    403: ("Forbidden", "403 not your conversation or message, blocked, a wrong current "
          "password, registration closed, a script token without the scope"),
    404: ("NotFound", "404 unknown user, message, key, token or route"),
    405: ("MethodNotAllowed", "405 the wrong method for this route"),
    408: ("RequestTimeout", "408 the body took too long to arrive"),
    409: ("Conflict", "409 taken, reused or deleted: see the error code"),
    413: ("TooLarge", "413 the body is over the request limit"),
    415: ("UnsupportedMediaType", "415 a body that is neither form nor JSON"),
    429: ("RateLimited", "429 rate limited: retry later"),
    500: ("InternalError", "500 the server failed; nothing was changed"),
    503: ("Unavailable", "503 storage unavailable, disk almost full, or the pair's node is "
          "fenced or moving: nothing was stored, try again"),
}  # fmt: skip

INFO = {
    "title": "pairchat API",
    "version": "0.1.0",
    "description": (
        "One-to-one chat; each pair's conversation is its own SQLite file. The first three "
        "paths are the seed contract (form-encoded POST, JSON replies); every POST body may "
        "also be JSON. See docs/api.md for the meaning of each field."
    ),
}


HEADERS = {
    "Retry-After": "seconds after which trying again may succeed (every 429, and a 503 of a "
    "full server or a fenced pair)",
    "X-RateLimit-Limit": "hits the tightest rate limit this request used allows per window "
    "(the X-RateLimit headers are on every reply, success or refusal, of a request that "
    "used a per-user or per-address rate limit)",
    "X-RateLimit-Remaining": "hits of it left in the window (0 on its 429)",
    "X-RateLimit-Reset": "seconds until the window frees a slot (delta-seconds)",
    "X-Request-Id": "this request's id, in the server's log lines for it: the client's own "
    "when 1-64 of A-Za-z0-9._:- starting with a letter or digit, else one the server made",
}
"""Reply headers (docs/api.md, "Limits" and "Conventions")."""
RATE_HEADERS = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")
STATUS_HEADERS = {429: ("Retry-After",), 503: ("Retry-After",)}


def _header_refs(names: tuple[str, ...]) -> dict[str, Any]:
    return {name: {"$ref": f"#/components/headers/{name}"} for name in names}


def _models() -> list[type[m.Model]]:
    found: list[type[m.Model]] = [m.Error, m.StreamEnd]  # StreamEnd: /events's end event
    for route in ROUTES:
        for model in (route.reply, route.request):
            if model is not None and model not in found:
                found.append(model)
    return found


def _always_sent(model: type[msgspec.Struct]) -> list[str]:
    return [
        field.encode_name
        for field in msgspec.structs.fields(model)
        if field.default is not msgspec.UNSET
    ]


def _components() -> dict[str, Any]:
    _, schemas = msgspec.json.schema_components(_models(), ref_template=REF)
    structs = {
        cls.__name__: cls
        for cls in vars(m).values()
        if isinstance(cls, type) and issubclass(cls, msgspec.Struct)
    }
    for name, schema in schemas.items():
        schema.pop("title", None)
        if name in structs:
            required = _always_sent(structs[name])
            if required:
                schema["required"] = required
            else:
                schema.pop("required", None)
    return dict(sorted(schemas.items()))


def _ref(model: type[msgspec.Struct]) -> dict[str, str]:
    return {"$ref": REF.format(name=model.__name__)}


def _username(schemas: dict[str, Any]) -> dict[str, Any]:
    username: dict[str, Any] = schemas[m.Other.__name__]["properties"]["username"]
    return username


def _operation(route: Route, schemas: dict[str, Any]) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": route.summary}
    if route.auth == "public":
        op["security"] = []
    elif route.auth == "door":
        op["security"] = [{"door": []}]
    parameters = [  # a path's parameter is a username (the recipient) or a message's id
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": {"type": "integer", "minimum": 1}
            if name.endswith("_id")
            else _username(schemas),
        }
        for name in route.path_parameters
    ]
    if route.request is not None and route.method == "get":
        schema = schemas[route.request.__name__]
        for name, prop in schema["properties"].items():
            parameters.append(
                {
                    "name": name,
                    "in": "query",
                    "required": name in schema.get("required", []),
                    "schema": prop,
                }
            )
    for name, description in route.header_parameters:
        parameters.append(
            {
                "name": name,
                "in": "header",
                "required": False,
                "description": description,
                "schema": {"type": "string", "pattern": "^[0-9]{0,18}$"},
            }
        )
    if parameters:
        op["parameters"] = parameters
    if route.request is not None and route.method == "post":
        op["requestBody"] = {
            "required": route.request_required,
            "content": {
                kind: {"schema": _ref(route.request)} for kind in route.request_media_types
            },
        }
    rate_limited = 429 in route.statuses
    responses: dict[str, Any] = {
        str(route.status): {
            "description": route.reply_description,
            "headers": _header_refs(("X-Request-Id", *(RATE_HEADERS if rate_limited else ()))),
            "content": {
                route.media_type: {
                    "schema": {"type": "string", "format": "binary"}
                    if route.binary_reply
                    else _ref(route.reply)
                }
            },
        }
    }
    for status in route.statuses:
        responses[str(status)] = {"$ref": f"#/components/responses/{STATUS_NAMES[status][0]}"}
    op["responses"] = responses
    return op


def document() -> dict[str, Any]:
    """The OpenAPI document, as plain data."""
    schemas = _components()
    paths: dict[str, dict[str, Any]] = {}
    for route in ROUTES:
        paths.setdefault(route.path, {})[route.method] = _operation(route, schemas)
    used = sorted({status for route in ROUTES for status in route.statuses})
    return {
        "openapi": "3.1.0",
        "info": INFO,
        "servers": [{"url": "http://127.0.0.1:5000"}],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "Token from /register or /login. Not needed on "
                    "conversation routes in open mode.",
                },
                "door": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "X-Pairchat-Door",
                    "description": "The SSH door's secret (door.secret in the data folder, "
                    "or PAIRCHAT_DOOR_SECRET).",
                },
            },
            "schemas": schemas,
            "headers": {
                name: {"description": description, "schema": {"type": "integer", "minimum": 0}}
                if name != "X-Request-Id"
                else {"description": description, "schema": {"type": "string"}}
                for name, description in HEADERS.items()
            },
            "responses": {
                STATUS_NAMES[status][0]: {
                    "description": STATUS_NAMES[status][1],
                    "headers": _header_refs(
                        ("X-Request-Id", *STATUS_HEADERS.get(status, ()), *RATE_HEADERS)
                    ),
                    "content": {JSON: {"schema": _ref(m.Error)}},
                }
                for status in used
            },
        },
    }


_PLAIN_KEY = re.compile(r"[A-Za-z0-9_/{}.$-]+\Z")


def _yaml(value: Any, indent: str = "") -> list[str]:
    """Block-style YAML: mappings and lists nest, every string is a JSON (double-quoted)
    scalar, so no text can be misread (the stray keys of the old hand-kept file)."""
    lines: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            name = key if _PLAIN_KEY.match(key) and not key.isdigit() else json.dumps(key)
            if isinstance(item, (dict, list)) and item:
                lines.append(f"{indent}{name}:")
                lines.extend(_yaml(item, indent + "  "))
            else:
                lines.append(f"{indent}{name}: {_scalar(item)}")
    else:
        for item in value:
            if isinstance(item, (dict, list)) and item:
                inner = _yaml(item, indent + "  ")
                lines.append(f"{indent}- {inner[0].lstrip()}")
                lines.extend(inner[1:])
            else:
                lines.append(f"{indent}- {_scalar(item)}")
    return lines


def _scalar(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return "{}" if isinstance(value, dict) else "[]"
    return json.dumps(value, ensure_ascii=False)


def render() -> str:
    """The document as the YAML text of docs/openapi.yaml."""
    header = "# Generated by `python -m protocol.openapi` from protocol/: do not edit.\n"
    return header + "\n".join(_yaml(document())) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
