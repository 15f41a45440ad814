"""Reading a request's fields: form or JSON bodies (query string on GET), strictly.

Form bodies are decoded as strict UTF-8 (a non-UTF-8 body is a 400, never
silently "repaired"); JSON must be an object. Typed getters turn a bad value
into the 400 JSON error of DESIGN.md.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any
from urllib.parse import parse_qsl

from flask import g, request

from backend.errors import ApiError, BadRequest

MAX_FIELDS = 32
MAX_INT = 2**63 - 1
_CLIENT_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,64}\Z")


def fields() -> dict[str, Any]:
    """The request's fields, parsed once per request."""
    cached: dict[str, Any] | None = g.get("pairchat_fields")
    if cached is None:
        cached = _parse()
        g.pairchat_fields = cached
    return cached


def _parse() -> dict[str, Any]:
    found: dict[str, Any] = {}
    if request.method == "GET":
        found.update(request.args.items())
    body = request.get_data(cache=True)
    if not body:
        return found
    mimetype = request.mimetype
    if mimetype == "application/json" or mimetype.endswith("+json"):
        try:
            data = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise BadRequest("bad_request", "the body is not valid UTF-8 JSON") from None
        if not isinstance(data, dict):
            raise BadRequest("bad_request", "a JSON body must be an object")
        found.update(data)
    elif mimetype in ("application/x-www-form-urlencoded", ""):
        try:
            text = body.decode("utf-8")
            pairs = parse_qsl(
                text,
                keep_blank_values=True,
                strict_parsing=False,
                errors="strict",
                max_num_fields=MAX_FIELDS,
            )
        except (UnicodeDecodeError, ValueError):
            raise BadRequest("bad_request", "the form body is not valid UTF-8 form data") from None
        for name, value in pairs:
            found.setdefault(name, value)
    elif mimetype == "multipart/form-data":
        for name, value in request.form.items():
            found.setdefault(name, value)
    else:
        raise ApiError(
            "unsupported_media_type",
            "send a form (application/x-www-form-urlencoded) or a JSON object",
            415,
        )
    for name, value in found.items():
        if isinstance(value, str):
            _check_text(name, value)
    return found


def _check_text(name: str, value: str) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise BadRequest("invalid_field", f"'{name}' is not valid Unicode text") from None


def text(name: str, *, required: bool = True) -> str | None:
    value = fields().get(name)
    if value is None or (value == "" and not required):
        if required:
            raise BadRequest("missing_field", f"'{name}' is required")
        return None
    if not isinstance(value, str):
        raise BadRequest("invalid_field", f"'{name}' must be a string")
    return value


def raw(name: str) -> Any:
    """A field as sent (a string or a JSON value); validation is the caller's."""
    return fields().get(name)


def integer(name: str, *, minimum: int = 0, maximum: int = MAX_INT) -> int | None:
    value = fields().get(name)
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise BadRequest("invalid_field", f"'{name}' must be a whole number")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and re.fullmatch(r"-?[0-9]{1,19}", value.strip()):
        number = int(value.strip())
    else:
        raise BadRequest("invalid_field", f"'{name}' must be a whole number")
    if not minimum <= number <= maximum:
        raise BadRequest("invalid_field", f"'{name}' must be between {minimum} and {maximum}")
    return number


def seconds(name: str) -> float:
    """A non-negative number of seconds (``wait``); the service caps it."""
    value = fields().get(name)
    if value is None or value == "":
        return 0.0
    try:
        if isinstance(value, bool):
            raise ValueError
        number = float(value)
    except (TypeError, ValueError):
        raise BadRequest("invalid_field", f"'{name}' must be a number of seconds") from None
    if math.isnan(number) or number < 0:
        raise BadRequest("invalid_field", f"'{name}' must be a number of seconds >= 0")
    return number


def client_id() -> str | None:
    value = fields().get("client_id")
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not _CLIENT_ID_RE.match(value):
        raise BadRequest("invalid_field", "'client_id' is 1-64 letters, digits, '-' or '_'")
    return value
