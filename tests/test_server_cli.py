"""``pairchat-server`` as operators run it: serve, demo-data, backup, export, forget."""

from __future__ import annotations

import json
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from tests.support import REPO, TEST_ENV, ServerProcess, bearer, http
from tests.test_seed_compat import seed_session


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "backend.server.cli", *args],
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
        "door.secret",  # the server made it; a backup takes it along (0600)
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


def serve(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "backend.server.cli", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", **TEST_ENV},
    )


def assert_one_line(done: subprocess.CompletedProcess[str], *words: str) -> None:
    """Exit code 2, one line on stderr that says what is wrong, no traceback (issue 11)."""
    assert done.returncode == 2, (done.returncode, done.stderr[-2000:])
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr[-2000:]
    assert "Traceback" not in done.stderr and "panicked" not in done.stderr
    for word in words:
        assert word in lines[0], (word, lines[0])


def test_a_busy_port_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as other:  # something that is not pairchat holds the port
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        done = serve("serve", "--port", str(port), "--data-dir", str(tmp_path / "data"))
    assert_one_line(done, f"port {port}", "busy", "--port")


def test_a_missing_or_unwritable_data_folder_is_one_line(tmp_path: Path) -> None:
    missing = serve("serve", "--data-dir", str(tmp_path / "no" / "such" / "folder"))
    assert_one_line(missing, "missing")
    a_file = tmp_path / "file"
    a_file.write_text("not a folder")
    assert_one_line(serve("serve", "--data-dir", str(a_file / "data")), "data folder")
    assert_one_line(serve("backup", str(tmp_path / "b"), "--data-dir", str(tmp_path / "none")))
    # read-only: a tmpfs mounted read-only (root ignores permission bits)
    read_only = tmp_path / "ro"
    read_only.mkdir()
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(read_only)], check=True
    )
    try:
        done = serve("serve", "--data-dir", str(read_only))
        assert_one_line(done, "cannot use the data folder", str(read_only))
    finally:
        subprocess.run(["umount", str(read_only)], check=True)


def test_mistyped_commands_and_bad_settings_are_one_line(tmp_path: Path) -> None:
    typo = serve("frget", "alice", "bob")
    assert_one_line(typo, "no command 'frget'", "forget", "serve", "backup", "invite")
    assert_one_line(serve("--workers", "0", "--data-dir", str(tmp_path)), "workers")
    assert_one_line(serve("serve", "--prot", "80"), "--prot")
    public = serve("serve", "--open", "--host", "0.0.0.0", "--data-dir", str(tmp_path))
    assert_one_line(public, "--allow-open-public")
    assert serve("--help").returncode == 0


def test_open_mode_on_a_public_address_needs_the_second_flag(
    server_process: Callable[..., ServerProcess],
) -> None:
    proc = server_process("--open", "--host", "0.0.0.0", "--allow-open-public")
    assert http.get(f"{proc.url}/healthz").status_code == 200
    reply = http.post(
        f"{proc.url}/get_message_history",
        data={"user_one": "alice", "user_two": "bob"},
        headers={"Host": "chat.example.org"},
    )
    assert reply.status_code == 400 and reply.json()["error"] == "bad_host"
