"""Issue 23: every reply carries ``X-Request-Id``; a client's own is kept only when safe.

``backend/http/middleware.py`` and ``backend/core/request_ids.py``: a door's session
sends its session id on every call (tests/doors/test_door_sessions.py), so a client
id in the safe form (1-64 of ``A-Za-z0-9._:-``, a letter or digit first) is used as
it is; anything else - too long, spaces, control characters, not ASCII - is
replaced by one the server makes, never logged.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from backend.core.request_ids import is_safe
from tests.support import Server, ServerProcess, http

HEADER = "X-Request-Id"


def test_every_reply_carries_a_request_id_of_its_own(server: Server) -> None:
    replies = [
        http.get(f"{server.url}/healthz"),
        http.get(f"{server.url}/healthz"),
        http.get(f"{server.url}/no-such-route"),
        http.post(f"{server.url}/send_message/bob", data={"message": "hi"}),  # no token: 401
    ]
    assert [r.status_code for r in replies] == [200, 200, 404, 401]
    ids = [r.headers.get(HEADER) for r in replies]
    assert all(ids) and len(set(ids)) == len(ids), ids
    assert all(is_safe(rid) for rid in ids if rid), ids


def test_a_safe_client_id_is_kept(server: Server) -> None:
    for given in ("ssh-1a2b3c4d", "web-0f0f0f0f-12", "A", "x" * 64, "a.b_c:d-e"):
        reply = http.get(f"{server.url}/healthz", headers={HEADER: given})
        assert reply.headers[HEADER] == given


@pytest.mark.parametrize(
    "given",
    [
        b"x" * 65,
        b"two words",
        b"-leading-dash",
        b"tab\there",
        b'quote"d',
        b"caf\xc3\xa9",
        b"",
    ],
)
def test_an_unsafe_client_id_is_replaced(server: Server, given: bytes) -> None:
    reply = http.get(f"{server.url}/healthz", headers=[(b"x-request-id", given)])
    made = reply.headers[HEADER]
    assert made.encode() != given and is_safe(made), made


@pytest.mark.live  # a pairchat-server process: granian and the front
def test_the_real_server_and_its_front_put_an_id_on_every_reply(tmp_path: Path) -> None:
    """The front answers some requests itself (a body over the limit: 413) before the
    app runs: those carry an id of their own too."""
    server = ServerProcess(tmp_path / "data", env={"PAIRCHAT_MAX_CONTENT_LENGTH": "1024"})
    server.start()
    try:
        kept = http.get(f"{server.url}/healthz", headers={HEADER: "ssh-1a2b3c4d"})
        assert kept.headers[HEADER] == "ssh-1a2b3c4d"
        made = http.get(f"{server.url}/healthz", headers={HEADER: "no good"}).headers[HEADER]
        assert is_safe(made) and made != "no good"
        too_large = http.post(f"{server.url}/register", content=b"x" * 4096)
        assert too_large.status_code == 413, too_large.text
        assert is_safe(too_large.headers.get(HEADER, "")), too_large.headers
        assert too_large.headers[HEADER] != made
    finally:
        server.stop()
