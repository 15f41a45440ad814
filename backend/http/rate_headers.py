"""``X-RateLimit-Limit/Remaining/Reset`` on every reply of a request that used a rate limit.

The limiters (``backend.limits.rate_limit``) report each take and give-back to
whoever watches the context; this module watches each request (from its
``before_request`` hook on, so a request refused earlier — a bad token, a
foreign ``Origin`` — carries none) and, after the view or the error handler
made the reply, writes the tightest limit the request touched: the one with
the fewest hits remaining (a send that is also a new conversation reports the
smaller budget). Flask runs ``after_request`` for a refusal's reply too, so a
``429`` carries them beside its ``Retry-After`` (``backend.http.errors``), and
a successful send, login or registration shows the budget counting down.

Semantics are those of the IETF draft "RateLimit header fields for HTTP":
``Limit`` is the hits per window, ``Remaining`` the hits left now, ``Reset``
delta-seconds (whole, rounded up) until the window frees a slot — 0 when none
is used — which on a ``429`` equals ``Retry-After``.
"""

from __future__ import annotations

import math

from flask import Flask, Response

from backend.limits.rate_limit import quotas_seen, stop_watching, tightest, watch_quotas

LIMIT, REMAINING, RESET = "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"


def register(app: Flask) -> None:
    app.before_request(_watch)
    app.after_request(_write)
    app.teardown_request(_stop)


def _watch() -> None:
    watch_quotas()


def _write(response: Response) -> Response:
    quota = tightest(quotas_seen())
    if quota is not None:
        response.headers[LIMIT] = str(quota.limit)
        response.headers[REMAINING] = str(quota.remaining)
        reset = str(math.ceil(quota.reset))
        if quota.remaining == 0 and "Retry-After" in response.headers:
            reset = response.headers["Retry-After"]  # the refusal's own wait, to the second
        response.headers[RESET] = reset
    return response


def _stop(_exc: BaseException | None) -> None:
    stop_watching()
