"""Issue 23, item 2: ``pairchat-server status`` on a live folder, read from the server.

The real program twice: a server with ``--metrics-port`` that has done some work,
and the ``status`` command on its folder (``--json`` and the human screen).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.support import REPO, TEST_ENV, ServerProcess, bearer, free_port, http, register

Start = Callable[..., ServerProcess]


def status(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "backend.server.cli", "status", "--data-dir", str(folder), *args],
        cwd=REPO,
        env={**TEST_ENV, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_status_json_on_a_live_folder(server_process: Start) -> None:
    port = free_port()
    server = server_process("--workers", "2", "--metrics-port", str(port))
    alice, bob = register(server.url, "alice"), register(server.url, "bob")
    sent = http.post(
        f"{server.url}/send_message/bob",
        data={"author": "alice", "message": "hi"},
        headers=bearer(alice),
    )
    assert sent.status_code < 300
    cursor = http.get(f"{server.url}/updates", headers=bearer(bob)).json()["cursor"]
    answers: list[int] = []

    def wait() -> None:  # a wait held open while status runs: it shows as online
        reply = httpx.get(
            f"{server.url}/updates",
            params={"since": cursor, "wait": 55},
            headers=bearer(bob),
            timeout=70,
        )
        answers.append(reply.status_code)

    waiter = threading.Thread(target=wait)
    waiter.start()
    # the wait is held (read from the metrics port: quick), then status is run once
    deadline = time.monotonic() + 30
    while "pairchat_held_waits 1.0" not in httpx.get(f"http://127.0.0.1:{port}/metrics").text:
        assert time.monotonic() < deadline, "the wait never showed"
        time.sleep(0.05)
    done = status(server.data_dir, "--json")
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert found["figures"]["held_waits"] == 1, found
    assert found["running"] is True
    assert found["pid"] == server.pid
    assert found["metrics"] == f"http://127.0.0.1:{port}"
    figures = found["figures"]
    assert figures["workers"] == 2
    assert figures["messages_sent"] == 1
    assert figures["messages_last_minute"] == 1
    assert figures["messages_last_hour"] == 1
    assert figures["disk_free_bytes"] > 0
    assert figures["uptime_seconds"] >= 0
    screen = status(server.data_dir)
    assert screen.returncode == 0, screen.stderr
    assert f"pid {server.pid}" in screen.stdout
    assert "1 messages sent" in screen.stdout
    server.stop()  # answers the held wait
    waiter.join(timeout=20)
    assert answers == [200]


def test_status_without_a_server_or_without_metrics(server_process: Start, tmp_path: Path) -> None:
    idle = tmp_path / "idle"
    idle.mkdir()
    done = status(idle, "--json")
    assert done.returncode == 3
    assert json.loads(done.stdout)["running"] is False
    server = server_process()
    done = status(server.data_dir)
    assert done.returncode == 0
    assert f"pid {server.pid}" in done.stdout
    assert "--metrics-port" in done.stdout


def test_status_shows_the_last_errors_of_the_servers_workers(server_process: Start) -> None:
    """A 5xx (the disk floor refuses registrations) is one of the last errors, with its
    request id, in --json and on the screen; a healthy request is not."""
    port = free_port()
    server = server_process(
        "--workers",
        "2",
        "--metrics-port",
        str(port),
        env={"PAIRCHAT_MIN_FREE_DISK_MB": "1000000000"},
    )
    assert http.get(f"{server.url}/healthz").status_code == 200
    for n in range(3):
        refused = http.post(
            f"{server.url}/register",
            data={"username": f"user{n}", "password": "correct horse"},
            headers={"X-Request-Id": f"web-0badd15c-{n}"},
        )
        assert refused.status_code == 503, refused.text
    done = status(server.data_dir, "--json")
    assert done.returncode == 0, done.stderr
    errors = json.loads(done.stdout)["last_errors"]
    mine = [line for line in errors if str(line.get("request_id", "")).startswith("web-0badd15c")]
    assert [line["request_id"] for line in mine] == [f"web-0badd15c-{n}" for n in range(3)]
    assert all("POST /register 503" in line["message"] for line in mine), mine
    assert all(line["pid"] != server.pid for line in mine)  # logged by the workers
    assert all(line["time"] <= time.time() for line in mine)
    screen = status(server.data_dir)
    assert "last errors" in screen.stdout
    assert "POST /register 503" in screen.stdout
    assert "[request web-0badd15c-2]" in screen.stdout


def test_a_workers_unexpected_exit_is_one_of_the_last_errors(server_process: Start) -> None:
    """granian's main process logs it (its own logger, not the root's): status shows it."""
    port = free_port()
    server = server_process("--metrics-port", str(port))
    worker = server.worker_pids()[0]
    os.kill(worker, signal.SIGKILL)
    deadline = time.monotonic() + 20
    while True:
        found = json.loads(status(server.data_dir, "--json").stdout)["last_errors"]
        if any("Unexpected exit from worker" in line["message"] for line in found):
            break
        assert time.monotonic() < deadline, found
        time.sleep(0.2)
    assert [line["pid"] for line in found] == [server.pid], found
