"""Errors the service raises, independent of Flask.

Every error maps to one JSON reply of DESIGN.md: ``{"success": false,
"error": code, "message": text}`` with ``status``. The storage and account
layers raise these; the HTTP layer renders them in one error handler.
"""

from __future__ import annotations


class ApiError(Exception):
    """Base class: a code for programs, a message for people, an HTTP status."""

    status = 400

    def __init__(self, code: str, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        if status is not None:
            self.status = status

    def to_json(self) -> dict[str, object]:
        return {"success": False, "error": self.code, "message": self.message}


class BadRequest(ApiError):
    status = 400


class Unauthorized(ApiError):
    status = 401


class Forbidden(ApiError):
    status = 403


class NotFound(ApiError):
    status = 404


class Conflict(ApiError):
    status = 409


class Unavailable(ApiError):
    """Storage cannot be written (disk full, read-only folder): nothing was stored."""

    status = 503
