"""What wraps every request: security headers on every reply, a limit on chunked bodies."""

from __future__ import annotations

import io
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from flask import current_app, request
from werkzeug.exceptions import RequestEntityTooLarge

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


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
    limit = int(current_app.config["MAX_CONTENT_LENGTH"])
    raw = request.environ["wsgi.input"].read(limit + 1)
    if len(raw) > limit:
        raise RequestEntityTooLarge()
    request.environ["wsgi.input"] = io.BytesIO(raw)
    request.environ["CONTENT_LENGTH"] = str(len(raw))
    request.environ.pop("HTTP_TRANSFER_ENCODING", None)
    request.environ["wsgi.input_terminated"] = False


class SecurityHeaders:
    """WSGI middleware adding ``SECURITY_HEADERS`` to every reply, errors included.

    At the WSGI level it is a list extend per reply; Werkzeug's ``Headers``
    update in an ``after_request`` hook validated each header every time and
    cost ~10% of a long-poll.
    """

    def __init__(self, app: WSGIApplication) -> None:
        self.app = app
        self.headers = list(SECURITY_HEADERS.items())

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            headers.extend(self.headers)
            return start_response(status, headers, exc_info)

        return self.app(environ, start)
