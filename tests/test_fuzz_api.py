"""Property-based fuzzing of every route in docs/openapi.yaml with schemathesis.

Schemathesis generates requests from the spec (valid ones and invalid ones) and
sends them over real HTTP to the real app on 127.0.0.1, signed in with a real
bearer token. Every reply must be documented: no 5xx, a documented status, JSON,
a body that matches the route's schema (errors match ``Error``) and the security
headers. Schemathesis's ``negative_data_rejection`` is off: it counts an unknown
query parameter (``/updates?x=1``) as invalid, and the server ignores unknown
parameters, as HTTP APIs do.

CI runs a short profile; ``PAIRCHAT_SOAK=1`` (``just soak``) runs the long one.
"""

from __future__ import annotations

import itertools
import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.support import REPO, LiveServer, bearer, http, register, settings_for

SOAK = os.environ.get("PAIRCHAT_SOAK") == "1"
EXAMPLES = 300 if SOAK else 25
SPEC = REPO / "docs" / "openapi.yaml"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]

schema = schemathesis.openapi.from_path(SPEC)
schema.config.generation.update(max_examples=EXAMPLES)

RUN: Counter[str] = Counter()
STATUSES: Counter[int] = Counter()
_fresh = itertools.count()


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, str]]:
    """One real server for every operation, with a signed-in user and a few others to meet."""
    folder: Path = tmp_path_factory.mktemp("fuzz") / "data"
    server = LiveServer(
        # short waits: a generated `wait` must not hold a case for 30 s
        settings_for(folder, max_wait=0.05, login_rate_limit="1000000 per minute"),
    ).start()
    token = register(server.url, "fuzzer")
    for name in ("alice", "bob"):
        register(server.url, name)
    # something to read: a conversation, a friend, a feed entry
    http.post(
        f"{server.url}/send_message/alice",
        data={"author": "fuzzer", "message": "hello"},
        headers=bearer(token),
    )
    http.post(f"{server.url}/add_friend", data={"username": "bob"}, headers=bearer(token))
    yield server, token
    server.stop()
    total = sum(RUN.values())
    per_operation = ", ".join(f"{label}={n}" for label, n in sorted(RUN.items()))
    statuses = dict(sorted(STATUSES.items()))
    fivexx = sum(n for status, n in STATUSES.items() if status >= 500)
    print(
        f"\nfuzz summary: {total} cases over {len(RUN)} operations "
        f"(max_examples={EXAMPLES}); statuses {statuses}; 5xx={fivexx}\n  {per_operation}"
    )


# Routes that revoke or change the token they carry (or the account): a fresh account each.
SPENDS_ITS_TOKEN = {
    "POST /logout",
    "POST /logout_all",
    "POST /change_password",
    "POST /delete_account",
}


def _token_for(case: Any, token: str, url: str) -> str:
    """These routes end the session they carry: give them a fresh account's token."""
    if case.operation.label in SPENDS_ITS_TOKEN:
        return register(url, f"logout{next(_fresh)}")
    return token


@pytest.mark.slow  # short profile in CI; `just soak` runs the long one
@schema.parametrize()
@settings(
    deadline=None,
    suppress_health_check=list(HealthCheck),
    print_blob=True,
)
def test_every_route_answers_as_documented(case: Any, fuzz_server: tuple[LiveServer, str]) -> None:
    server, token = fuzz_server
    headers = bearer(_token_for(case, token, server.url))
    if case.operation.label == "GET /events" and _stream_opened(case, server.url, headers):
        return  # a 200 never ends: its opening was checked; every other status below
    response = case.call(base_url=server.url, headers=headers, timeout=30)
    RUN[case.operation.label] += 1
    STATUSES[response.status_code] += 1
    assert response.status_code < 500, (response.status_code, response.text)
    case.validate_response(response, checks=CHECKS, headers=headers)
    sent = {name.lower() for name in response.headers}
    assert {"x-content-type-options", "cache-control", "content-security-policy"} <= sent


def _stream_opened(case: Any, url: str, headers: dict[str, str]) -> bool:
    """``GET /events`` as generated: True if it opened a stream (checked here), False if
    it answered anything else (then the ordinary call and checks apply)."""
    kwargs = case.as_transport_kwargs(base_url=url, headers=headers)
    if kwargs["method"] != "GET" or not all(
        str(value).isascii() for value in kwargs["headers"].values()
    ):
        return False  # schemathesis's own call sends what httpx would refuse to
    request = http.build_request(
        kwargs["method"], kwargs["url"], params=kwargs.get("params"), headers=kwargs["headers"]
    )
    reply = http.send(request, stream=True)
    try:
        if reply.status_code != 200:
            return False
        RUN[case.operation.label] += 1
        STATUSES[200] += 1
        assert reply.headers["content-type"] == "text/event-stream; charset=utf-8"
        assert {"x-content-type-options", "cache-control", "content-security-policy"} <= set(
            reply.headers
        )
        assert next(reply.iter_lines()).startswith("retry: ")
        return True
    finally:
        reply.close()
