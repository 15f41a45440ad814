"""Issue 23, item 3: ``serve --log-format json`` - every line one JSON event.

The real program with 2 workers; its whole output (the server's own lines,
granian's main process and workers) is read back.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support import ServerProcess, http

pytestmark = pytest.mark.live  # a pairchat-server process

Start = Callable[..., ServerProcess]


def test_json_logs_are_one_event_a_line(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    server = ServerProcess(tmp_path / "data", "--workers", "2", "--log-format", "json", log=log)
    server.start()
    try:
        assert http.get(f"{server.url}/healthz").status_code == 200
    finally:
        server.stop()
    events = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    assert events, "nothing logged"
    for event in events:
        assert {"time", "level", "logger", "pid", "message"} <= set(event), event
    messages = [event["message"] for event in events]
    assert any("pairchat serving" in message for message in messages), messages
    assert any("Spawning worker" in message for message in messages), messages
    assert any(event["logger"] == "_granian" for event in events), events


def test_access_log_lines_carry_the_request_id_a_door_session_sent(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    server = ServerProcess(
        tmp_path / "data", "--access-log", "--log-format", "json", log=log
    ).start()
    try:
        sent = http.get(f"{server.url}/healthz", headers={"X-Request-Id": "ssh-feed1234"})
        assert sent.headers["X-Request-Id"] == "ssh-feed1234"
        made = http.get(f"{server.url}/no-such-route").headers["X-Request-Id"]
    finally:
        server.stop()
    events = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    lines = [event for event in events if event["logger"] == "pairchat.requests"]
    mine = [event for event in lines if event.get("request_id") == "ssh-feed1234"]
    assert len(mine) == 1, lines
    assert mine[0]["path"] == "/healthz" and mine[0]["status"] == 200, mine
    assert mine[0]["method"] == "GET" and mine[0]["ms"] >= 0, mine
    assert mine[0]["message"].startswith("GET /healthz 200 "), mine
    assert [e["status"] for e in lines if e.get("request_id") == made] == [404], lines


def test_without_access_log_only_5xx_requests_are_logged_with_their_id(tmp_path: Path) -> None:
    """The disk floor refuses a registration with 503: that line is written (text format,
    the request id at its end); the 200s and 4xx are not."""
    log = tmp_path / "server.log"
    server = ServerProcess(
        tmp_path / "data", env={"PAIRCHAT_MIN_FREE_DISK_MB": "1000000000"}, log=log
    ).start()
    try:
        assert http.get(f"{server.url}/healthz").status_code == 200
        refused = http.post(
            f"{server.url}/register",
            data={"username": "alice", "password": "correct horse"},
            headers={"X-Request-Id": "web-0badd15c-7"},
        )
        assert refused.status_code == 503, refused.text
    finally:
        server.stop()
    text = log.read_text()
    request_lines = [line for line in text.splitlines() if "pairchat.requests" in line]
    assert len(request_lines) == 1, text
    assert "ERROR pairchat.requests: POST /register 503 " in request_lines[0]
    assert request_lines[0].endswith("[request web-0badd15c-7]"), request_lines
