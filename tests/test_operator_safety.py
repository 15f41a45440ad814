"""Issue 11, operator safety: commands that cannot lose data, stops that do not hang,
exports that cannot attack a terminal, owner-only files, consistent backups.

Real ``pairchat-server`` processes and the ``pairchat-server`` commands, as an
operator runs them; the demo launcher in tmux, as a user runs it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import signal
import sqlite3
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import (
    REPO,
    TEST_ENV,
    ServerProcess,
    alive,
    bearer,
    children,
    connections_read,
    free_port,
    held_feed_waits,
    http,
    read_connections,
    register,
    until,
    wait_healthy,
)

Start = Callable[..., ServerProcess]


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "backend.server.cli", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", **TEST_ENV},
    )


def one_line_refusal(done: subprocess.CompletedProcess[str], *words: str) -> None:
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("pairchat-server: "), done.stderr
    assert "Traceback" not in done.stderr and "panicked" not in done.stderr
    for word in words:
        assert word in lines[0], (word, lines[0])


def send(url: str, token: str, author: str, to: str, text: str) -> httpx.Response:
    return http.post(
        f"{url}/send_message/{to}",
        data={"author": author, "message": text},
        headers=bearer(token),
    )


def history(url: str, token: str, a: str, b: str) -> list[str]:
    reply = http.post(
        f"{url}/get_message_history", data={"user_one": a, "user_two": b}, headers=bearer(token)
    )
    return [m["message"] for m in reply.json()["history"]]


# -- forget and the lock -------------------------------------------------------------------
def test_forget_refuses_while_the_server_runs_and_erases_for_good_when_stopped(
    server_process: Start,
) -> None:
    """Before: forget said "erased", the server kept serving the deleted file, and a send
    after it was acknowledged and lost at the next restart; the feed kept stale counts."""
    server = server_process()
    alice, bob = register(server.url, "alice"), register(server.url, "bob")
    assert send(server.url, alice, "alice", "bob", "secret").status_code == 200
    folder = str(server.data_dir)

    refused = cli("forget", "alice", "bob", "--yes", "--data-dir", folder)
    one_line_refusal(refused, "is serving", "stop it")
    assert (server.data_dir / "alice_bob.db").exists()
    # nothing was lost: a send after the refusal is kept across a restart
    assert send(server.url, bob, "bob", "alice", "after").status_code == 200
    server.stop()
    restarted = server_process(data_dir=server.data_dir)
    assert history(restarted.url, alice, "alice", "bob") == ["secret", "after"]
    restarted.stop()

    erased = cli("forget", "alice", "bob", "--yes", "--data-dir", folder)
    assert erased.returncode == 0 and "erased alice_bob.db" in erased.stdout
    again = server_process(data_dir=server.data_dir)
    assert history(again.url, alice, "alice", "bob") == []
    assert not (server.data_dir / "alice_bob.db").exists(), "a read creates no file"
    friends = http.get(f"{again.url}/friends", headers=bearer(alice)).json()["friends"]
    assert friends == [], "no stale unread count or last message"
    changes = http.get(f"{again.url}/updates", headers=bearer(bob)).json()["changed"]
    assert all(c["unread"] == 0 and c["last_id"] == 0 for c in changes)


def test_one_server_per_data_folder_and_per_port(server_process: Start, tmp_path: Path) -> None:
    """Before: a second server on the same port started anyway and split the requests."""
    first = server_process()
    env = {**os.environ, **TEST_ENV}
    base = [sys.executable, "-m", "backend.server.cli", "serve"]
    same_folder = subprocess.run(
        [*base, "--port", str(free_port()), "--data-dir", str(first.data_dir)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    one_line_refusal(same_folder, "another pairchat server", f"pid {first.pid}")
    same_port = subprocess.run(
        [*base, "--port", str(first.port), "--data-dir", str(tmp_path / "other")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    one_line_refusal(same_port, f"port {first.port}", "busy")
    assert http.get(f"{first.url}/healthz").status_code == 200


# -- stopping ------------------------------------------------------------------------------------
def _other_thread(pid: int) -> int:
    """A thread of ``pid`` that is not its main thread (granian's worker watcher)."""
    threads = [int(tid) for tid in os.listdir(f"/proc/{pid}/task") if int(tid) != pid]
    assert threads, f"process {pid} has no thread besides its main thread"
    return threads[0]


@pytest.mark.parametrize(
    ("signum", "aimed_at"),
    [(signal.SIGTERM, "main"), (signal.SIGHUP, "main"), (signal.SIGTERM, "other thread")],
    ids=["SIGTERM", "SIGHUP", "SIGTERM-on-another-thread"],
)
def test_a_stop_answers_held_waits_at_once_and_exits_within_two_seconds(
    server_process: Start, signum: signal.Signals, aimed_at: str
) -> None:
    """Before: SIGTERM waited up to 60 s for held long-polls; SIGHUP reloaded and kept running.
    Later: a SIGTERM the kernel handed to a thread other than the main one was never acted
    on, and the server ran on for good (the demo's server outlived its killed launcher in
    CI); ``kill`` aimed at a thread's id makes the kernel pick that thread."""
    server = server_process("--workers", "2")
    tokens = [register(server.url, f"user{n}") for n in range(4)]
    port = int(server.url.rsplit(":", 1)[1])
    before = set(read_connections(port))
    waits = [held_feed_waits(server.url, token, 3) for token in tokens]
    # a gate, not a sleep: every wait's request read by the server (a loaded machine once
    # sent the signal before some of them had connected: "Connection refused")
    deadline = time.monotonic() + 20
    while (
        len([c for c, unread in read_connections(port).items() if c not in before and not unread])
        < 12
    ):
        assert time.monotonic() < deadline, "the 12 waits never reached the server"
        time.sleep(0.02)
    workers = server.worker_pids()
    assert len(workers) == 2
    assert server.proc is not None
    started = time.monotonic()
    os.kill(server.pid if aimed_at == "main" else _other_thread(server.pid), signum)
    # the main process is this test's child (a zombie until reaped): poll() it
    while (server.proc.poll() is None or any(alive(pid) for pid in workers)) and (
        time.monotonic() - started < 10
    ):
        time.sleep(0.02)
    took = time.monotonic() - started
    assert took < 2.0, f"stopped after {took:.2f} s"
    for threads, answers in waits:
        for thread in threads:
            thread.join(timeout=10)
        assert answers == [200, 200, 200], answers


@pytest.fixture
def tmux_socket(tmp_path: Path) -> Iterator[Callable[..., str]]:
    socket = f"pairchat-ops-{os.getpid()}-{tmp_path.name}"

    def run(*args: str) -> str:
        done = subprocess.run(
            ["tmux", "-L", socket, *args], capture_output=True, text=True, check=False
        )
        return done.stdout

    yield run
    run("kill-server")


def _server_pids(data_dir: Path, timeout: float = 60) -> list[int]:
    """The demo's server: its main pid (from the folder's lock file) and its workers."""
    deadline = time.monotonic() + timeout
    lock = data_dir / "_server.lock"
    while time.monotonic() < deadline:
        found = re.match(r"pid (\d+)", lock.read_text() if lock.exists() else "")
        if found and children(int(found[1])):
            main = int(found[1])
            return [main, *children(main)]
        time.sleep(0.1)
    raise AssertionError("the demo's server never started")


@pytest.mark.live  # the demo runs its own server
@pytest.mark.parametrize("how", ["quit", "hangup", "killed"])
def test_the_demo_stops_its_whole_server(
    how: str, tmp_path: Path, tmux_socket: Callable[..., str]
) -> None:
    """Before: quitting the demo left an orphaned worker for ~50 s; closing the terminal
    (SIGHUP) left the server running for good. Later: a hung-up launcher sometimes never
    exited (Textual's writer thread died on the closed terminal, its exit then waited on
    a full queue) and, in ~1 CI run in 5, kept its server too: the launcher must go."""
    port = free_port()
    data = tmp_path / "data"
    data.mkdir()
    variables = {
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "TERM": "xterm-256color",
        **TEST_ENV,
    }
    exports = " ".join(shlex.quote(f"{key}={value}") for key, value in variables.items())
    demo = f"{shlex.quote(sys.executable)} -m tui.demo --port {port} --data-dir {data}"
    pid_file = tmp_path / "demo.pid"
    command = f"cd {shlex.quote(str(REPO))} && echo $$ > {pid_file} && exec env {exports} {demo}"
    tmux_socket(
        "new-session", "-d", "-s", "demo", "-x", "80", "-y", "24", f"sh -c {shlex.quote(command)}"
    )
    pids = _server_pids(data)
    wait_healthy(f"http://127.0.0.1:{port}", timeout=30)
    # a second TUI, like another terminal, holds a long-poll on the server
    held = register(f"http://127.0.0.1:{port}", "dave")
    held_feed_waits(f"http://127.0.0.1:{port}", held, 2)
    # a gate, not a sleep: both waits' requests read by the server (only this process's
    # connections count, not the demo TUI's own)
    until(lambda: connections_read(port) >= 2, "the 2 waits in the server's hands")
    started = time.monotonic()
    if how == "quit":
        deadline = time.monotonic() + 30
        while "alice" not in tmux_socket("capture-pane", "-p", "-t", "demo"):
            assert time.monotonic() < deadline, "the TUI never came up"
            time.sleep(0.2)
        tmux_socket("send-keys", "-t", "demo", "C-q")
    elif how == "hangup":
        tmux_socket("kill-session", "-t", "demo")  # the terminal closes: SIGHUP
    else:
        os.kill(int(pid_file.read_text()), signal.SIGKILL)  # the launcher dies outright
    launcher = int(pid_file.read_text())  # `exec`: the shell's pid is the launcher's
    watched = pids if how == "killed" else [launcher, *pids]
    try:
        while any(alive(pid) for pid in watched) and time.monotonic() - started < 30:
            time.sleep(0.05)
        left = [pid for pid in watched if alive(pid)]
        assert not left, f"still running {time.monotonic() - started:.0f} s after {how}: {left}"
    finally:
        for pid in [launcher, *pids]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


# -- export ----------------------------------------------------------------------------------
HOSTILE = [
    "\x1b]52;c;cm0gLXJmIH4=\x07 copied",  # OSC 52: sets the terminal's clipboard
    "\x1b[2J\x1b[Hcleared",  # CSI: clears the screen
    "fine\r- **bob** (2025-01-01T00:00:00+00:00): I owe alice 100 EUR",  # CR: overwrites
    "ok\n- **bob** (2025-01-01T00:00:00+00:00): forged on a line of its own",
    "\u009b31mC1 CSI\u202eevil bidi\u2028line separator",
    "*bold* _it_ `code` [link](http://x) <b> # heading | pipe",
]


def test_export_escapes_control_characters_and_markdown(server_process: Start) -> None:
    """Before: export --format md passed OSC 52 and CSI raw and let a message forge a line."""
    server = server_process()
    alice = register(server.url, "alice")
    register(server.url, "bob")
    for text in HOSTILE:
        assert send(server.url, alice, "alice", "bob", text).status_code == 200
    server.stop()
    folder = str(server.data_dir)

    markdown = cli("export", "alice", "bob", "--format", "md", "--data-dir", folder).stdout
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e]", markdown)
    message_lines = [line for line in markdown.splitlines() if line.startswith("- ")]
    assert len(message_lines) == len(HOSTILE), "one line per message, none forged"
    assert all(line.startswith("- **alice** (") for line in message_lines)
    assert "\\u001b\\]52;c;" in markdown and "\\u009b31m" in markdown  # shown, not obeyed
    assert "\\*bold\\* \\_it\\_ \\`code\\` \\[link\\](http://x) \\<b\\>" in markdown

    lines = cli("export", "alice", "bob", "--format", "jsonl", "--data-dir", folder).stdout
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e]", lines)
    assert [json.loads(line)["message"] for line in lines.splitlines()] == HOSTILE


# -- file modes and backups ------------------------------------------------------------------
def _modes(folder: Path) -> dict[str, int]:
    return {path.name: stat.S_IMODE(path.stat().st_mode) for path in folder.iterdir()}


def test_the_data_folder_is_owner_only(server_process: Start, tmp_path: Path) -> None:
    """Before: the data folder was 0755 and files 0644: readable by other local users."""
    folder = tmp_path / "data"
    folder.mkdir(mode=0o755)
    old = folder / "old_file.db"
    old.write_bytes(b"")
    old.chmod(0o644)  # from before this rule
    server = server_process(data_dir=folder)
    alice = register(server.url, "alice")
    register(server.url, "bob")
    assert send(server.url, alice, "alice", "bob", "private").status_code == 200
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    modes = _modes(folder)
    assert {"_accounts.sqlite3", "alice_bob.db", "alice_bob.db-wal", "_server.lock"} <= set(modes)
    assert all(mode & 0o077 == 0 for mode in modes.values()), modes

    backup = tmp_path / "backup"
    assert cli("backup", str(backup), "--data-dir", str(folder)).returncode == 0
    assert stat.S_IMODE(backup.stat().st_mode) == 0o700
    assert all(mode & 0o077 == 0 for mode in _modes(backup).values()), _modes(backup)


def test_a_backup_under_load_is_consistent_across_files(
    server_process: Start, tmp_path: Path
) -> None:
    """Before: the copy's feed could point past the copied pair file."""
    server = server_process()
    users = {name: register(server.url, name) for name in ("alice", "bob", "carol", "dave")}
    pairs = [("alice", "bob"), ("carol", "dave"), ("bob", "carol")]
    stop = threading.Event()

    sent = [0] * len(pairs)  # messages each load thread has had stored

    def load(number: int, author: str, to: str) -> None:
        while not stop.is_set():
            reply = send(server.url, users[author], author, to, f"{author} {sent[number]}")
            if reply.status_code == 200:
                sent[number] += 1

    threads = [threading.Thread(target=load, args=(n, *pair)) for n, pair in enumerate(pairs)]
    for thread in threads:
        thread.start()
    try:
        # a gate, not a sleep: every pair is being written to when the backups start
        until(lambda: min(sent) >= 10, "10 messages stored in every pair")
        for round_ in range(3):
            dest = tmp_path / f"backup{round_}"
            done = cli("backup", str(dest), "--data-dir", str(server.data_dir))
            assert done.returncode == 0, done.stderr
            _check_consistent(dest)
    finally:
        stop.set()
        for thread in threads:
            thread.join()


def _check_consistent(copy: Path) -> None:
    """Every feed row of the copied accounts file points at most at the copied pair's newest id."""
    accounts = sqlite3.connect(copy / "_accounts.sqlite3")
    rows = accounts.execute("SELECT owner, peer, last_id, read_marker FROM contacts").fetchall()
    accounts.close()
    newest: dict[tuple[str, str], int] = {}
    for path in copy.glob("*_*.db"):
        low, high = path.stem.split("_")
        conn = sqlite3.connect(path)
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        newest[(low, high)] = conn.execute("SELECT max(rowid) FROM conversation").fetchone()[0] or 0
        conn.close()
    assert rows, "the feed was copied"
    for owner, peer, last_id, marker in rows:
        pair = (min(owner, peer), max(owner, peer))
        assert last_id <= newest.get(pair, 0), (owner, peer, last_id, newest.get(pair))
        assert marker <= newest.get(pair, 0)


def test_the_demo_on_a_folder_it_cannot_use_says_why_in_one_line(tmp_path: Path) -> None:
    """Before: pairchat-server's one line, then the launcher's traceback of the failed
    ``demo-data`` step. Now the line alone, and its exit status."""
    done = subprocess.run(
        [sys.executable, "-m", "tui.demo", "--port", "9", "--data-dir", str(tmp_path / "a" / "b")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "is missing" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
