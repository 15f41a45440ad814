"""Reading a request's fields into typed values: validation at the edge.

Form, multipart or JSON bodies (query string on GET), strictly: every text is
decoded as strict UTF-8 (invalid UTF-8 anywhere — query, form, multipart field —
is a 400, never silently "repaired"); JSON must be an object (nested too deep is
a 400, not a crash); numbers are ASCII digits only (a superscript two or an
Arabic-Indic digit is not a number here). Each getter returns a typed value
(``Username``, ``Pair``, ``int``, seconds, a checked text) or raises the domain
error that says what is wrong, so views hand the services values that already
follow docs/design.md. A field with a rule of its own is ``parsed(name, rule)``
with the rule kept by its service.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import parse_qsl

from flask import g, request
from werkzeug.sansio.multipart import Data, Epilogue, Field, MultipartDecoder, NeedData

from backend.core.errors import InvalidField, MissingField
from backend.core.usernames import Pair, Username, canonical_username
from backend.http.errors import MalformedBody, UnsupportedBody

MAX_FIELDS = 32
MAX_INT = 2**63 - 1
_CURSOR_RE = re.compile(r"[0-9]{1,18}\Z")
_SECONDS_RE = re.compile(r"[0-9]{1,12}(?:\.[0-9]{1,9})?\Z")
T = TypeVar("T")
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
        try:
            query = request.environ.get("QUERY_STRING", "").encode("latin-1")
        except UnicodeEncodeError:
            raise MalformedBody("the query string is not valid UTF-8 form data") from None
        found.update(_form(query, "query string"))
    body = request.get_data(cache=True)
    if not body:
        return found
    mimetype = request.mimetype
    if mimetype == "application/json" or mimetype.endswith("+json"):
        try:
            data = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise MalformedBody("the body is not valid UTF-8 JSON") from None
        except RecursionError:
            raise MalformedBody("the JSON body is nested too deeply") from None
        if not isinstance(data, dict):
            raise MalformedBody("a JSON body must be an object")
        found.update(data)
    elif mimetype in ("application/x-www-form-urlencoded", ""):
        for name, value in _form(body, "form body").items():
            found.setdefault(name, value)
    elif mimetype == "multipart/form-data":
        for name, value in _multipart(body).items():
            found.setdefault(name, value)
    else:
        raise UnsupportedBody("send a form (application/x-www-form-urlencoded) or a JSON object")
    for name, value in found.items():
        if isinstance(value, str):
            _check_text(name, value)
    return found


def _form(raw: bytes, what: str) -> dict[str, str]:
    """URL-encoded fields (the first of each name), as strict UTF-8."""
    found: dict[str, str] = {}
    try:
        pairs = parse_qsl(
            raw.decode("utf-8"),
            keep_blank_values=True,
            strict_parsing=False,
            errors="strict",
            max_num_fields=MAX_FIELDS,
        )
    except (UnicodeDecodeError, ValueError):
        raise MalformedBody(f"the {what} is not valid UTF-8 form data") from None
    for name, value in pairs:
        found.setdefault(name, value)
    return found


def _multipart(body: bytes) -> dict[str, str]:
    """multipart/form-data fields, each strict UTF-8 (Werkzeug's form would replace bad bytes)."""
    boundary = request.mimetype_params.get("boundary", "")
    if not boundary or not boundary.isascii():
        raise MalformedBody("a multipart body needs a boundary")
    decoder = MultipartDecoder(boundary.encode("ascii"), max_form_memory_size=len(body) + 1)
    found: dict[str, str] = {}
    name: str | None = None
    chunks: list[bytes] = []
    try:
        decoder.receive_data(body)
        decoder.receive_data(None)
        while True:
            event = decoder.next_event()
            if isinstance(event, (NeedData, Epilogue)):
                break
            if isinstance(event, Field):
                name, chunks = event.name, []
            elif isinstance(event, Data):
                if name is None:
                    raise MalformedBody("a multipart body may carry fields, not files")
                chunks.append(event.data)
                if not event.more_data:
                    found.setdefault(name, b"".join(chunks).decode("utf-8"))
                    name = None
                    if len(found) > MAX_FIELDS:
                        raise MalformedBody(f"at most {MAX_FIELDS} fields")
            elif not isinstance(event, Field):  # a File, or anything unexpected
                raise MalformedBody("a multipart body may carry fields, not files")
    except UnicodeDecodeError:
        raise MalformedBody("a multipart field is not valid UTF-8") from None
    except ValueError:
        raise MalformedBody("the multipart body is malformed") from None
    return found


def _check_text(name: str, value: str) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidField(f"'{name}' is not valid Unicode text") from None


def text(name: str, *, required: bool = True) -> str | None:
    value = fields().get(name)
    if value is None or (value == "" and not required):
        if required:
            raise MissingField(f"'{name}' is required")
        return None
    if not isinstance(value, str):
        raise InvalidField(f"'{name}' must be a string")
    return value


def text_or_empty(name: str) -> str:
    """A string field, or ``""`` when it is absent or not a string (login's lenient read)."""
    value = fields().get(name)
    return value if isinstance(value, str) else ""


def parsed(name: str, rule: Callable[[object], T]) -> T:
    """A field put through its service's ``rule`` (which raises what is wrong)."""
    return rule(fields().get(name))


def username(name: str) -> Username:
    return canonical_username(fields().get(name), name)


def pair(one: str = "user_one", two: str = "user_two") -> Pair:
    """Two usernames, canonical and sorted; ``SameUser`` if they are one."""
    return Pair.of(username(one), username(two))


def integer(name: str, *, minimum: int = 0, maximum: int = MAX_INT) -> int | None:
    value = fields().get(name)
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise InvalidField(f"'{name}' must be a whole number")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and re.fullmatch(r"-?[0-9]{1,19}", value.strip()):
        number = int(value.strip())
    else:
        raise InvalidField(f"'{name}' must be a whole number")
    if not minimum <= number <= maximum:
        raise InvalidField(f"'{name}' must be between {minimum} and {maximum}")
    return number


def seconds(name: str) -> float:
    """A non-negative number of seconds (``wait``), in ASCII digits; the service caps it."""
    value = fields().get(name)
    if value is None or value == "":
        return 0.0
    if isinstance(value, str) and _SECONDS_RE.match(value.strip()):
        return float(value.strip())
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
        if math.isnan(number) or number < 0:
            raise InvalidField(f"'{name}' must be a number of seconds >= 0")
        return number
    raise InvalidField(f"'{name}' must be a number of seconds (digits, an optional fraction)")


def cursor(name: str) -> int | None:
    """A feed cursor as ``/updates`` returned it (a string of digits), or None if absent."""
    value = text(name, required=False)
    if value is None:
        return None
    return parse_cursor(value, f"'{name}' must be a cursor returned by /updates")


def parse_cursor(value: str, refusal: str) -> int:
    """A feed cursor (1-18 ASCII digits) as a number, or ``InvalidField(refusal)``."""
    if not _CURSOR_RE.match(value):
        raise InvalidField(refusal)
    return int(value)


def client_id() -> str | None:
    value = fields().get("client_id")
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not _CLIENT_ID_RE.match(value):
        raise InvalidField("'client_id' is 1-64 letters, digits, '-' or '_'")
    return value
