"""``pairchat-server`` as operators run it: serve, demo-data, backup, export, forget."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from tests.support import REPO, TEST_ENV, ServerProcess, bearer, http
from tests.test_seed_compat import seed_session


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "backend.cli", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", **TEST_ENV},
    )


def test_open_mode_under_granian_answers_the_seed_client(
    server_process: Callable[..., ServerProcess],
) -> None:
    proc = server_process("--open")
    seed_session(proc.url, "Alice", "bob")
    assert (proc.data_dir / "alice_bob.db").exists()
    reply = http.post(
        f"{proc.url}/get_message_history", data={"user_one": "../etc", "user_two": "x"}
    )
    assert reply.status_code == 400 and reply.json()["error"] == "invalid_username"


def test_auth_is_on_by_default(server_process: Callable[..., ServerProcess]) -> None:
    proc = server_process()
    reply = http.post(
        f"{proc.url}/get_message_history", data={"user_one": "alice", "user_two": "bob"}
    )
    assert reply.status_code == 401


def test_demo_data_backup_export_forget(
    tmp_path: Path, server_process: Callable[..., ServerProcess]
) -> None:
    data = tmp_path / "data"
    made = run_cli("demo-data", "--data-dir", str(data))
    assert made.returncode == 0, made.stderr
    assert "alice" in made.stdout and "alice-pairchat" in made.stdout
    again = run_cli("demo-data", "--data-dir", str(data))  # idempotent
    assert again.returncode == 0, again.stderr
    proc = server_process(data_dir=data)
    token = http.post(
        f"{proc.url}/login", data={"username": "alice", "password": "alice-pairchat"}
    ).json()["token"]
    history = http.post(
        f"{proc.url}/get_message_history",
        data={"user_one": "alice", "user_two": "bob"},
        headers=bearer(token),
    ).json()["history"]
    assert len(history) == 3
    http.post(
        f"{proc.url}/send_message/bob",
        data={"author": "alice", "message": "while serving"},
        headers=bearer(token),
    )

    backup = tmp_path / "backup"
    done = run_cli("backup", "--data-dir", str(data), str(backup))
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in backup.iterdir()) == [
        "_accounts.sqlite3",
        "alice_bob.db",
        "alice_carol.db",
    ]
    conn = sqlite3.connect(backup / "alice_bob.db")
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert [r[0] for r in conn.execute("SELECT message FROM conversation ORDER BY rowid")][
        -1
    ] == "while serving"
    conn.close()

    exported = run_cli("export", "--data-dir", str(data), "bob", "Alice", "--format", "jsonl")
    lines = [json.loads(line) for line in exported.stdout.splitlines()]
    assert [m["message"] for m in lines][-1] == "while serving" and len(lines) == 4
    markdown = run_cli("export", "--data-dir", str(data), "alice", "bob", "--format", "md").stdout
    assert markdown.startswith("# alice and bob") and "**bob**" in markdown

    proc.stop()
    gone = run_cli("forget", "--data-dir", str(data), "alice", "bob", "--yes")
    assert gone.returncode == 0 and "erased" in gone.stdout
    assert not (data / "alice_bob.db").exists() and (data / "alice_carol.db").exists()
    bad = run_cli("export", "--data-dir", str(data), "a_b", "c")
    assert (
        bad.returncode == 2
        and "not a valid username" in bad.stderr
        and "Traceback" not in bad.stderr
    )
