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
