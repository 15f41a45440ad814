"""What wraps every request: security headers and a request id on every reply, the request
log line, a limit on chunked bodies."""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from flask import current_app, request
from werkzeug.exceptions import RequestEntityTooLarge

from backend.core import request_ids
from backend.http.uploads import UPLOAD_PREFIX

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}
LOGGED_PATH = 200
REQUEST_ID = "pairchat.request_id"
"""The WSGI environ's key for the request's id."""
requests_log = logging.getLogger("pairchat.requests")
"""One line per request: INFO when ``serve --access-log`` asks for them, a 5xx always (ERROR)."""


def read_chunked_body() -> None:
    """``before_request``: refuse a chunked body over the limit with 413.

    A chunked request has no Content-Length for ``MAX_CONTENT_LENGTH`` to check,
    and Werkzeug's limited stream silently stops at the limit: a long message
    would be stored truncated. Read up to one byte past the limit and decide.
    """
    if "chunked" not in request.environ.get("HTTP_TRANSFER_ENCODING", "").lower():
        return
    if request.content_length is not None:
        return
    if request.path.startswith(UPLOAD_PREFIX):
        return  # a file: read as a stream, to its own limit (backend/http/uploads.py)
    limit = int(current_app.config["MAX_CONTENT_LENGTH"])
    raw = request.environ["wsgi.input"].read(limit + 1)
    if len(raw) > limit:
        raise RequestEntityTooLarge()
    request.environ["wsgi.input"] = io.BytesIO(raw)
    request.environ["CONTENT_LENGTH"] = str(len(raw))
    request.environ.pop("HTTP_TRANSFER_ENCODING", None)
    request.environ["wsgi.input_terminated"] = False


class SecurityHeaders:
    """WSGI middleware adding ``SECURITY_HEADERS`` and ``X-Request-Id`` to every reply,
    errors included, and writing the request's log line.

    At the WSGI level it is a list extend per reply; Werkzeug's ``Headers``
    update in an ``after_request`` hook validated each header every time and
    cost ~10% of a long-poll.

    The request id is the client's ``X-Request-Id`` when it is in a safe form, else
    one made here (``backend/core/request_ids.py``); it is in the request's log line
    and in every line logged while the request runs (``request_ids.CURRENT``). The
    line is written when the app answers (a long-poll that waits: when it parks).
    """

    def __init__(self, app: WSGIApplication) -> None:
        self.app = app
        self.headers = list(SECURITY_HEADERS.items())
        self.ids = request_ids.RequestIds()

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        rid = environ[REQUEST_ID] = self.ids.for_request(environ.get("HTTP_X_REQUEST_ID"))
        started = time.monotonic()

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            headers.extend(self.headers)
            headers.append((request_ids.HEADER, rid))
            code = status[:3]
            if code[0] == "5":
                _log_request(logging.ERROR, environ, code, started)
            elif requests_log.isEnabledFor(logging.INFO):
                _log_request(logging.INFO, environ, code, started)
            return start_response(status, headers, exc_info)

        token = request_ids.CURRENT.set(rid)
        try:
            return self.app(environ, start)
        finally:
            request_ids.CURRENT.reset(token)


def _log_request(level: int, environ: WSGIEnvironment, status: str, started: float) -> None:
    """``GET /friends 200 1.2 ms`` (no query string: it is the client's business). A path
    is cut to ``LOGGED_PATH`` characters, anything unprintable in it shown as ``?``: a
    line is one event, whatever a client puts in its URL."""
    method = environ.get("REQUEST_METHOD", "?")
    path = environ.get("PATH_INFO", "").encode("latin-1", "replace").decode("utf-8", "replace")
    path = path[:LOGGED_PATH]
    if not path.isprintable():
        path = "".join(c if c.isprintable() else "?" for c in path)
    took = (time.monotonic() - started) * 1000
    requests_log.log(
        level,
        "%s %s %s %.1f ms",
        method,
        path,
        status,
        took,
        extra={"method": method, "path": path, "status": int(status), "ms": round(took, 1)},
    )
