"""The one place where errors become replies: status and wire code per error class.

Storage and the services raise the domain errors of ``backend.core.errors`` (they
know nothing of HTTP); this table decides what each one is on the wire, next to
the codes for Werkzeug's own errors (unknown route, wrong method, body too
large). Every reply is ``{"success": false, "error": code, "message": text}``
(docs/design.md, "Errors"); a new error class needs a row here, and a test
checks that none is missing.
"""

from __future__ import annotations

import logging
import math

from flask import Flask, current_app, request
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException

from backend.core.errors import (
    BadCredentials,
    Blocked,
    ClientIdConflict,
    DiskAlmostFull,
    DisplayNameTaken,
    DoorRefused,
    EmptyMessage,
    FilesQuotaExceeded,
    FileTooLarge,
    Forbidden,
    InsufficientScope,
    InvalidCode,
    InvalidField,
    InvalidInput,
    InvalidInvite,
    InvalidTicket,
    InvalidUsername,
    KeyTaken,
    LastKey,
    MessageDeleted,
    MessageTooLong,
    MissingField,
    NoAttachment,
    NodeFenced,
    NotYourMessage,
    PairchatError,
    PairElsewhere,
    RateLimited,
    RegistrationClosed,
    RequestTimeout,
    SameUser,
    ServerFull,
    StorageUnavailable,
    TooManyTokens,
    Unauthenticated,
    UnknownKey,
    UnknownMessage,
    UnknownToken,
    UnknownUser,
    UsernameTaken,
    WrongPassword,
)
from backend.http import replies

log = logging.getLogger("pairchat")


class MalformedBody(InvalidInput):
    """A body that is not UTF-8 form data or a JSON object."""


class UnsupportedBody(PairchatError):
    """A body that is neither a form nor JSON."""


class HostRefused(InvalidInput):
    """Open mode: a ``Host`` this server does not answer to (DNS rebinding)."""


class CrossSite(Forbidden):
    """Open mode: a request a browser made on behalf of another site."""


ERRORS: dict[type[PairchatError], tuple[int, str]] = {
    MalformedBody: (400, "bad_request"),
    HostRefused: (400, "bad_host"),
    MissingField: (400, "missing_field"),
    InvalidField: (400, "invalid_field"),
    InvalidUsername: (400, "invalid_username"),
    SameUser: (400, "same_user"),
    EmptyMessage: (400, "empty_message"),
    MessageTooLong: (400, "message_too_long"),
    InvalidTicket: (400, "invalid_ticket"),
    InvalidCode: (400, "invalid_code"),
    Unauthenticated: (401, "unauthorized"),
    BadCredentials: (401, "bad_credentials"),
    Forbidden: (403, "forbidden"),
    Blocked: (403, "blocked"),
    NotYourMessage: (403, "forbidden"),
    DoorRefused: (403, "forbidden"),
    CrossSite: (403, "cross_site"),
    WrongPassword: (403, "wrong_password"),
    InsufficientScope: (403, "insufficient_scope"),
    RegistrationClosed: (403, "registration_closed"),
    InvalidInvite: (403, "invalid_invite"),
    UnknownUser: (404, "unknown_user"),
    UnknownMessage: (404, "unknown_message"),
    NoAttachment: (404, "no_attachment"),
    UnknownKey: (404, "unknown_key"),
    UnknownToken: (404, "unknown_token"),
    RequestTimeout: (408, "request_timeout"),
    UsernameTaken: (409, "username_taken"),
    DisplayNameTaken: (409, "display_name_taken"),
    ClientIdConflict: (409, "client_id_conflict"),
    MessageDeleted: (409, "message_deleted"),
    KeyTaken: (409, "key_taken"),
    LastKey: (409, "last_key"),
    TooManyTokens: (409, "too_many_tokens"),
    FileTooLarge: (413, "file_too_large"),
    FilesQuotaExceeded: (413, "quota_exceeded"),
    UnsupportedBody: (415, "unsupported_media_type"),
    RateLimited: (429, "rate_limited"),
    StorageUnavailable: (503, "unavailable"),
    DiskAlmostFull: (503, "unavailable"),
    PairElsewhere: (503, "pair_unavailable"),
    NodeFenced: (503, "pair_unavailable"),
    ServerFull: (503, "unavailable"),
}

# Werkzeug's HTTP errors (raised before or around our views).
HTTP_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
}


def status_and_code(exc: PairchatError) -> tuple[int, str] | None:
    """The row for ``exc``'s class, or for the nearest base class that has one."""
    for cls in type(exc).__mro__:
        row = ERRORS.get(cls)
        if row is not None:
            return row
    return None


def register(app: Flask) -> None:
    app.register_error_handler(PairchatError, _domain_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected)


def _domain_error(exc: PairchatError) -> ResponseReturnValue:
    row = status_and_code(exc)
    if row is None:
        return _unexpected(exc)
    status, code = row
    headers = {}
    if exc.retry_after is not None:
        headers["Retry-After"] = retry_after_value(exc.retry_after)
    return replies.error(code, exc.message), status, headers


def retry_after_value(seconds: float) -> str:
    """A ``Retry-After`` header's value: whole seconds, at least 1 (RFC 9110 10.2.3)."""
    return str(max(1, math.ceil(seconds)))


def _http_error(exc: HTTPException) -> ResponseReturnValue:
    status = exc.code or 500
    if status == 413:
        limit = current_app.config["MAX_CONTENT_LENGTH"]
        message = f"the request body is larger than {limit} bytes"
    else:
        message = exc.description or exc.name
    headers = {}
    allowed = getattr(exc, "valid_methods", None)
    if status == 405 and allowed:  # RFC 9110 15.5.6: a 405 says what is allowed
        headers["Allow"] = ", ".join(sorted(allowed))
    return replies.error(HTTP_CODES.get(status, "http_error"), message), status, headers


def _unexpected(exc: Exception) -> ResponseReturnValue:
    log.exception("unexpected error on %s %s", request.method, request.path, exc_info=exc)
    return replies.error("internal_error", "the server failed; nothing was changed"), 500
