"""Issue 23: a door session as an operator sees it - its id in the logs, its figures.

``pairchat-server serve --ssh-port --web-port --metrics-port --access-log``, and one
``ssh HOST send`` with the real OpenSSH client: the door logs the session's id when it
opens and ends (doors/limits.py), the API call the session made carries that id in
the server's request log (X-Request-Id, doors/session_env.py and tui/door.py), and the
server's scrape counts the session by door and says when each door started.
"""

from __future__ import annotations

import contextvars
import json
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.doors.conftest import DOOR_SECRET, wait_until
from tests.support import REPO, TEST_ENV, ServerProcess, free_port, http, register

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(port: int) -> Samples:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def claim(api: str, key: Path, username: str) -> None:
    public = key.with_suffix(".pub").read_text().split()
    ticket = http.post(
        f"{api}/door/session",
        data={"public_key": " ".join(public[:2])},
        headers={"X-Pairchat-Door": DOOR_SECRET},
    ).json()["ticket"]
    claimed = http.post(f"{api}/door/claim", data={"ticket": ticket, "username": username})
    assert claimed.status_code in (200, 201), claimed.text


def test_an_ssh_session_is_logged_counted_and_its_api_calls_carry_its_id(
    tmp_path: Path, new_key: Callable[[str], Path]
) -> None:
    ssh_port, web_port, metrics_port = free_port(), free_port(), free_port()
    log = tmp_path / "server.log"
    server = ServerProcess(
        tmp_path / "data",
        *("--ssh-port", str(ssh_port), "--web-port", str(web_port)),
        *("--metrics-port", str(metrics_port), "--access-log", "--log-format", "json"),
        env={"PAIRCHAT_DOOR_SECRET": DOOR_SECRET},
        log=log,
    ).start()
    try:
        wait_until(lambda: listening(ssh_port), "the SSH door listening")
        started = scrape(metrics_port)
        for door in ("ssh", "web"):
            when = value(started, "pairchat_door_start_time_seconds", door=door)
            assert when is not None and when <= time.time(), (door, started)
        key = new_key("alice")
        claim(server.url, key, "alice")
        register(server.url, "bob")
        sent = ssh_send(ssh_port, key, "bob", "hello")
        assert sent.returncode == 0, sent.stderr

        def counted() -> bool:
            now = scrape(metrics_port)
            return (
                value(now, "pairchat_door_sessions_started_total", door="ssh") == 1
                and value(now, "pairchat_door_sessions", door="ssh") == 0
            )

        wait_until(counted, "the session counted, and no longer open")
        wait_until(lambda: " ended after " in log.read_text(), "the session's end logged")
        shown = status(server.data_dir)
        assert shown.returncode == 0, shown.stderr
        doors = json.loads(shown.stdout)["figures"]["doors"]
        assert doors["ssh"]["sessions_started"] == 1 and doors["ssh"]["sessions_open"] == 0
        assert doors["web"]["uptime_seconds"] >= 0, doors
    finally:
        server.stop()
    text = log.read_text()
    opened = re.findall(r"ssh session (ssh-[0-9a-f]{8}) opened from 127\.0\.0\.1", text)
    assert len(opened) == 1, text
    session = opened[0]
    assert f"ssh session {session} ended after " in text
    requests = [
        json.loads(line)
        for line in text.splitlines()
        if line.startswith("{") and '"pairchat.requests"' in line
    ]
    calls = [r for r in requests if r.get("request_id") == session]
    sends = [r for r in calls if (r["method"], r["path"]) == ("POST", "/send_message/bob")]
    assert len(sends) == 1 and sends[0]["status"] < 300, requests
    others = [r for r in requests if r.get("request_id") != session]
    assert all(r["path"] != "/send_message/bob" for r in others), others


def status(folder: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "backend.server.cli", "status", "--json"]
    return subprocess.run(
        [*command, "--data-dir", str(folder)],
        cwd=REPO,
        env={**TEST_ENV, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )


def ssh_send(port: int, key: Path, *words: str) -> subprocess.CompletedProcess[str]:
    argv = ["ssh", "-p", str(port), "-i", str(key), "-o", "IdentitiesOnly=yes"]
    argv += ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null"]
    argv += ["-o", "LogLevel=ERROR", "127.0.0.1", "send", *words]
    return subprocess.run(argv, input="", capture_output=True, text=True, timeout=60)


def test_a_session_take_gets_an_id_its_env_and_headers_carry(tmp_path: Path) -> None:
    # a context of its own: a take marks its context's current session
    contextvars.copy_context().run(_session_take_gets_an_id, tmp_path)


def _session_take_gets_an_id(tmp_path: Path) -> None:
    from doors.limits import CURRENT_SESSION, Counts
    from doors.session_env import session_env
    from tui.door import door_headers

    counts = Counts()
    connection = counts.take({"addr:10.0.0.1": 20})  # an SSH connection: no session
    assert connection is not None and connection.session is None
    tab = counts.take({"tabs": 2, "tabs-from:10.0.0.1": 2})
    assert tab is not None and tab.session is not None
    assert re.fullmatch(r"web-[0-9a-f]{8}", tab.session)
    env = session_env(api="http://127.0.0.1:1", config_dir=tmp_path, session=tab.session)
    assert env["PAIRCHAT_SESSION_ID"] == tab.session
    assert door_headers(env) == {"X-Request-Id": tab.session}
    other = counts.take({"tabs": 2})
    assert other is not None and other.session not in (None, tab.session)
    # the SSH door names no session: the one taken last in this context is the session's
    assert CURRENT_SESSION.get() == other.session
    assert session_env(api="a", config_dir=tmp_path)["PAIRCHAT_SESSION_ID"] == other.session
    tab.release()
    tab.release()  # once only
    assert counts.count("tabs") == 1
