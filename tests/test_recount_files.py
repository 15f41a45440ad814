"""``pairchat-server recount-files`` and ``forget`` keep the files tallies true.

Each user's files tally (``files_bytes`` in the accounts store, what the user quota
counts) must equal the bytes of the files charged to them across the pair files.
``recount-files`` puts it right when it is not — files from before pair schema
version 6 (an open-mode send was never charged, but the upgrade marks every old
file as its author's), a crash between a send's charge and its pair write — and
refuses while a server holds the folder. ``forget`` gives the bytes back only once
the pair's file is erased. Through the real ``pairchat-server`` program.
"""

from __future__ import annotations

import contextlib
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

from backend.storage.accounts_schema import ACCOUNTS_FILE
from backend.storage.conversation import MIGRATIONS, Conversation
from backend.storage.database import connect, migrate
from tests.support import REPO, TEST_ENV, LiveServer, ServerProcess, bearer, http, register
from tests.test_file_storage import delete, file_id, send_file
from tests.test_server_cli import assert_one_line, run_cli

LiveStart = Callable[..., LiveServer]


def tallies(data: Path) -> dict[str, int]:
    """Every account's files tally, read from the accounts file."""
    with contextlib.closing(sqlite3.connect(data / ACCOUNTS_FILE)) as db:
        return dict(db.execute("SELECT username, files_bytes FROM users").fetchall())


def set_tally(data: Path, username: str, size: int) -> None:
    """What a crash between a send's charge and its pair write leaves: a wrong tally."""
    with contextlib.closing(sqlite3.connect(data / ACCOUNTS_FILE)) as db, db:
        db.execute("UPDATE users SET files_bytes = ? WHERE username = ?", (size, username))


def stored(data: Path) -> dict[str, int]:
    """The bytes of the files charged to each user, across every pair file."""
    totals: dict[str, int] = {}
    for path in sorted(data.glob("*_*.db")):
        conversation = Conversation(path)
        try:
            for username, size in conversation.charged_bytes().items():
                totals[username] = totals.get(username, 0) + size
        finally:
            conversation.close()
    return totals


def old_pair_file(path: Path, author: str, size: int) -> None:
    """A pair file of schema version 5 (before ``charged_to``) holding one file message
    from ``author``: what an open-mode send, never charged, left there."""
    old = connect(path, create=True)
    migrate(old, MIGRATIONS[:5])
    with old:
        old.execute(
            "INSERT INTO conversation (author, message, date_sent) VALUES (?, '', 1)", (author,)
        )
        old.execute(
            "INSERT INTO attachment VALUES (1, 'old.bin', ?, 'application/octet-stream')", (size,)
        )
        old.execute("INSERT INTO attachment_chunk VALUES (1, 0, ?)", (b"o" * size,))
    old.close()


def recount(data: Path) -> subprocess.CompletedProcess[str]:
    done = run_cli("recount-files", "--data-dir", str(data))
    assert done.returncode == 0, (done.returncode, done.stdout, done.stderr)
    return done


def test_an_open_mode_file_from_before_version_6_is_counted_once_recounted(
    live_server: LiveStart, tmp_path: Path
) -> None:
    """The reviewer's case: before, deleting alice's uncharged old file after the upgrade
    gave back its 300 bytes and left her tally at 200 while she stored 500."""
    data = tmp_path / "data"
    server = live_server(data_dir=data, user_files_quota=1000)
    alice = register(server.url, "alice")
    register(server.url, "bob")
    server.stop()
    old_pair_file(data / "alice_bob.db", "alice", 300)  # sent in open mode, never charged
    old_pair_file(data / "bob_zed.db", "zed", 100)  # zed had no account then, nor has now

    server = live_server(data_dir=data, user_files_quota=1000)
    new = file_id(server, alice, "alice", "bob", b"n" * 500)
    assert tallies(data)["alice"] == 500 and stored(data)["alice"] == 800, "the drift"
    server.stop()

    done = recount(data)
    assert "alice: 500 -> 800 bytes" in done.stdout, done.stdout
    assert "1 file(s) of authors with no account charged to nobody" in done.stdout, done.stdout
    assert tallies(data) == stored(data) | {"bob": 0} == {"alice": 800, "bob": 0}

    server = live_server(data_dir=data, user_files_quota=1000)
    over = send_file(server, alice, "alice", "bob", b"x" * 201)
    assert over.status_code == 413, "the old file counts against her quota now"
    assert delete(server, alice, "alice", "bob", 1)["deleted"] is True
    assert tallies(data)["alice"] == 500 == stored(data)["alice"], "given back once, rightly"
    assert delete(server, alice, "alice", "bob", new)["deleted"] is True
    assert tallies(data)["alice"] == 0

    # zed's old file is nobody's: a later account of that name is not refunded for it
    zed = register(server.url, "zed")
    file_id(server, zed, "zed", "bob", b"z" * 200)
    assert delete(server, zed, "bob", "zed", 1)["deleted"] is True
    assert tallies(data)["zed"] == 200 == stored(data)["zed"]


def test_a_tally_left_wrong_by_a_crash_is_put_right(live_server: LiveStart, tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = live_server(data_dir=data, user_files_quota=1000)
    alice = register(server.url, "alice")
    bob = register(server.url, "bob")
    register(server.url, "carol")
    file_id(server, alice, "alice", "bob", b"a" * 300)
    file_id(server, bob, "bob", "alice", b"b" * 200)
    server.stop()
    set_tally(data, "alice", 900)  # charged, then the pair write never happened
    set_tally(data, "bob", 0)
    set_tally(data, "carol", 77)

    done = recount(data)
    assert "recounted 1 pair file(s): 3 tally(ies) changed" in done.stdout, done.stdout
    assert tallies(data) == {"alice": 300, "bob": 200, "carol": 0}
    again = recount(data)
    assert "0 tally(ies) changed" in again.stdout, "a second run changes nothing"

    server = live_server(data_dir=data, user_files_quota=1000)
    assert send_file(server, alice, "alice", "bob", b"a" * 700).status_code == 200, (
        "the 600 bytes the crash took from her quota are hers again"
    )


def test_recount_files_refuses_while_a_server_holds_the_folder(
    server_process: Callable[..., ServerProcess],
) -> None:
    server = server_process()
    alice = register(server.url, "alice")
    register(server.url, "bob")
    sent = http.post(
        f"{server.url}/send_file/bob",
        data={"author": "alice"},
        files={"file": ("a.bin", b"a" * 300, "application/octet-stream")},
        headers=bearer(alice),
    )
    assert sent.status_code == 200, sent.text
    set_tally(server.data_dir, "alice", 5)

    refused = run_cli("recount-files", "--data-dir", str(server.data_dir))
    assert_one_line(refused, "is serving", "stop it", "recount-files")
    assert tallies(server.data_dir)["alice"] == 5, "nothing was written beside the server"
    server.stop()
    recount(server.data_dir)
    assert tallies(server.data_dir)["alice"] == 300


def test_recount_files_refuses_multi_node_mode(tmp_path: Path) -> None:
    """Each node holds only its own pairs: one node's sums would wrongly set the shared
    tallies. Refused before anything is opened (no database is reached)."""
    data = tmp_path / "data"
    data.mkdir()
    cluster = {
        "PAIRCHAT_NODE": "one",
        "PAIRCHAT_DATABASE_URL": "postgresql://127.0.0.1:9/none",
        "PAIRCHAT_REDIS_URL": "redis://127.0.0.1:9/0",
    }
    done = subprocess.run(
        [sys.executable, "-m", "backend.server.cli", "recount-files", "--data-dir", str(data)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", **TEST_ENV, **cluster},
    )
    assert_one_line(done, "multi-node mode", "its own pairs")
    assert list(data.iterdir()) == [], "nothing was made in the folder"


@contextlib.contextmanager
def undeletable(path: Path) -> Iterator[None]:
    """``path`` bind-mounted on itself: unlinking it fails (EBUSY), even for root,
    while it stays a file SQLite reads and writes as before."""
    subprocess.run(["mount", "--bind", str(path), str(path)], check=True)
    try:
        yield
    finally:
        subprocess.run(["umount", str(path)], check=True)


def test_forget_gives_nothing_back_when_the_pair_file_cannot_be_erased(
    live_server: LiveStart, tmp_path: Path
) -> None:
    """Before: forget gave alice's 300 bytes back, then failed to erase the file (with a
    traceback): the file stayed, and her tally fell below what she stores."""
    data = tmp_path / "data"
    server = live_server(data_dir=data, user_files_quota=1000)
    alice = register(server.url, "alice")
    register(server.url, "bob")
    file_id(server, alice, "alice", "bob", b"a" * 300)
    server.stop()
    pair = data / "alice_bob.db"

    with undeletable(pair):
        failed = run_cli("forget", "--data-dir", str(data), "alice", "bob", "--yes")
    assert pair.exists() and stored(data) == {"alice": 300}
    assert tallies(data)["alice"] == 300, "the file is still there, and so is its charge"
    assert_one_line(failed, "cannot erase alice_bob.db", "nothing was given back")

    erased = run_cli("forget", "--data-dir", str(data), "alice", "bob", "--yes")
    assert erased.returncode == 0 and "erased alice_bob.db" in erased.stdout, erased.stderr
    assert not pair.exists() and tallies(data)["alice"] == 0


def test_forget_past_the_pair_file_gives_back_and_warns_of_a_wal_left_beside_it(
    live_server: LiveStart, tmp_path: Path
) -> None:
    """Before: the pair file was erased, then its -wal could not be: forget said nothing
    was given back and to run it again, but the second run found no conversation, and
    alice stayed charged 300 bytes she no longer stored (the feed rows kept the erased
    last message too). The file's removal is the point of no return."""
    data = tmp_path / "data"
    server = live_server(data_dir=data, user_files_quota=1000)
    alice = register(server.url, "alice")
    register(server.url, "bob")
    file_id(server, alice, "alice", "bob", b"a" * 300)
    server.stop()
    pair = data / "alice_bob.db"
    wal = Path(f"{pair}-wal")

    holder = sqlite3.connect(pair)  # a reader holding the file keeps its -wal beside it
    try:
        holder.execute("SELECT count(*) FROM conversation").fetchone()
        assert wal.exists()
        with undeletable(wal):
            done = run_cli("forget", "--data-dir", str(data), "alice", "bob", "--yes")
    finally:
        holder.close()
    assert done.returncode == 0, (done.returncode, done.stdout, done.stderr)
    assert "erased alice_bob.db" in done.stdout
    warning = done.stderr.strip().splitlines()
    assert len(warning) == 1 and "Traceback" not in done.stderr, done.stderr
    assert warning[0].startswith("warning:") and str(wal) in warning[0], warning
    assert "delete it by hand" in warning[0], warning
    assert not pair.exists() and stored(data) == {}
    assert tallies(data)["alice"] == 0, "the file is gone, and so is its charge"
    with contextlib.closing(sqlite3.connect(data / ACCOUNTS_FILE)) as db:
        rows = db.execute("SELECT last_id, last_text FROM contacts").fetchall()
    assert rows and all(row == (0, None) for row in rows), rows
