"""What big files cost on disk, and the per-user files tally, through the real server.

A pair's ``-wal`` file is cut back after a big upload (``journal_size_limit``), a
deleted file's pages leave a new pair file (``auto_vacuum = INCREMENTAL``), and the
tally of each user's files (``files_bytes`` in the accounts store) always equals the
bytes of the files charged to them, in open mode too, through deletes and ``forget``.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from backend.core.usernames import pair_file_name
from backend.storage.attachments import Freed
from backend.storage.conversation import MIGRATIONS, Conversation
from backend.storage.database import JOURNAL_SIZE_LIMIT, connect, migrate
from tests.support import LiveServer, bearer, http, register
from tests.test_server_cli import run_cli

MIB = 1024 * 1024
Start = Callable[..., LiveServer]


def pair_path(server: LiveServer, one: str, two: str) -> Path:
    return server.data_dir / pair_file_name(one, two)


def wal_size(server: LiveServer, one: str, two: str) -> int:
    return Path(f"{pair_path(server, one, two)}-wal").stat().st_size


def send_file(
    server: LiveServer, token: str | None, author: str, to: str, content: bytes
) -> httpx.Response:
    return http.post(
        f"{server.url}/send_file/{to}",
        data={"author": author},
        files={"file": ("data.bin", content, "application/octet-stream")},
        headers=bearer(token) if token else {},
    )


def send_text(server: LiveServer, token: str | None, author: str, to: str, text: str) -> None:
    reply = http.post(
        f"{server.url}/send_message/{to}",
        data={"author": author, "message": text},
        headers=bearer(token) if token else {},
    )
    assert reply.status_code == 200, reply.text


def delete(
    server: LiveServer, token: str | None, one: str, two: str, message_id: int
) -> dict[str, Any]:
    reply = http.post(
        f"{server.url}/delete_message",
        data={"user_one": one, "user_two": two, "id": str(message_id)},
        headers=bearer(token) if token else {},
    )
    assert reply.status_code == 200, reply.text
    message: dict[str, Any] = reply.json()["message"]
    return message


def test_a_big_uploads_wal_frames_are_cut_back_at_the_pairs_next_write(
    live_server: Start,
) -> None:
    server = live_server()
    alice = register(server.url, "alice")
    register(server.url, "bob")
    sent = send_file(server, alice, "alice", "bob", os.urandom(12 * MIB))
    assert sent.status_code == 200, sent.text
    assert wal_size(server, "alice", "bob") > 12 * MIB, "the upload went through the WAL"
    send_text(server, alice, "alice", "bob", "did you get it?")
    assert wal_size(server, "alice", "bob") <= JOURNAL_SIZE_LIMIT, (
        "the checkpointed frames of the upload are not kept on disk beside the data"
    )


def pages(path: Path) -> tuple[int, int]:
    """(bytes in use by the file's pages as last committed, free pages among them)."""
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        count, size, free = (
            db.execute(f"PRAGMA {name}").fetchone()[0]
            for name in ("page_count", "page_size", "freelist_count")
        )
    return count * size, free


def file_id(server: LiveServer, token: str | None, one: str, two: str, content: bytes) -> int:
    sent = send_file(server, token, one, two, content)
    assert sent.status_code == 200, sent.text
    return int(sent.json()["id"])


def test_a_deleted_files_pages_leave_a_new_pair_file_and_an_old_one_reuses_them(
    live_server: Start, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    seed = sqlite3.connect(data / pair_file_name("alice", "carol"))  # the seed server's file
    seed.execute("CREATE TABLE conversation (author text, message text, date_sent text)")
    seed.execute("INSERT INTO conversation VALUES ('carol', 'hello from 2019', '1560000000')")
    seed.commit()
    seed.close()
    server = live_server(data_dir=data)
    alice = register(server.url, "alice")
    register(server.url, "bob")
    register(server.url, "carol")

    big = file_id(server, alice, "alice", "bob", os.urandom(12 * MIB))
    send_text(server, alice, "alice", "bob", "and a word after it")
    assert pages(pair_path(server, "alice", "bob"))[0] > 12 * MIB
    assert delete(server, alice, "alice", "bob", big)["deleted"] is True
    in_use, free = pages(pair_path(server, "alice", "bob"))
    assert (in_use < MIB, free) == (True, 0), "the deleted file's pages left the file"
    send_text(server, alice, "alice", "bob", "still here")
    server.stop()  # the last connection checkpoints: the file itself is that small
    assert pair_path(server, "alice", "bob").stat().st_size < MIB
    with contextlib.closing(sqlite3.connect(pair_path(server, "alice", "bob"))) as db:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        texts = db.execute("SELECT message FROM conversation ORDER BY rowid").fetchall()
    assert texts == [("",), ("and a word after it",), ("still here",)], (
        "the pages moved, not the rows"
    )

    server = live_server(data_dir=data)
    old = file_id(server, alice, "alice", "carol", os.urandom(8 * MIB))
    high_water = pages(pair_path(server, "alice", "carol"))[0]
    assert delete(server, alice, "alice", "carol", old)["deleted"] is True
    assert pages(pair_path(server, "alice", "carol"))[1] > 0, "an old file keeps its free pages"
    file_id(server, alice, "alice", "carol", os.urandom(8 * MIB))
    assert pages(pair_path(server, "alice", "carol"))[0] <= high_water, "and reuses them"


def tally(server: LiveServer, username: str) -> int:
    """The accounts store's files tally of ``username`` (what the user quota counts)."""
    assert server.services is not None
    return server.services.account_store.files_bytes(username)


def test_in_open_mode_a_file_is_charged_and_its_deletion_gives_back_only_that(
    live_server: Start,
) -> None:
    server = live_server(open_mode=True, user_files_quota=1000)
    alice = register(server.url, "alice")
    register(server.url, "bob")
    signed = file_id(server, alice, "alice", "bob", b"a" * 600)
    anonymous = file_id(server, None, "alice", "bob", b"o" * 300)  # the seed's client, as alice
    assert tally(server, "alice") == 900, "a file of alice's counts however it was sent"
    over = send_file(server, None, "alice", "bob", b"x" * 101)
    assert over.status_code == 413 and over.json()["error"] == "quota_exceeded", over.text
    assert delete(server, None, "alice", "bob", anonymous)["deleted"] is True
    assert tally(server, "alice") == 600
    assert send_file(server, None, "alice", "bob", b"x" * 401).status_code == 413, (
        "the deletion gave back 300 bytes, no more"
    )
    assert delete(server, alice, "alice", "bob", signed)["deleted"] is True
    assert tally(server, "alice") == 0


def test_a_file_sent_before_its_author_had_an_account_is_charged_to_nobody(
    live_server: Start,
) -> None:
    server = live_server(open_mode=True, user_files_quota=1000)
    early = file_id(server, None, "zed", "bob", b"z" * 300)  # no account: no tally to charge
    zed = register(server.url, "zed")
    register(server.url, "bob")
    assert tally(server, "zed") == 0
    file_id(server, zed, "zed", "bob", b"z" * 500)
    assert delete(server, zed, "zed", "bob", early)["deleted"] is True
    assert tally(server, "zed") == 500, "deleting the uncharged file gave nothing back"
    assert send_file(server, zed, "zed", "bob", b"z" * 501).status_code == 413


def test_forget_gives_back_what_was_charged_and_a_deleted_account_keeps_its_tally(
    live_server: Start, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    server = live_server(data_dir=data, open_mode=True, user_files_quota=1000)
    file_id(server, None, "zed", "bob", b"z" * 300)  # before zed's account: charged to nobody
    zed = register(server.url, "zed")
    register(server.url, "bob")
    register(server.url, "carol")
    file_id(server, zed, "zed", "bob", b"z" * 500)
    file_id(server, zed, "zed", "carol", b"z" * 200)
    gone = http.post(
        f"{server.url}/delete_account", data={"password": "correct horse"}, headers=bearer(zed)
    )
    assert gone.status_code == 200, gone.text
    assert tally(server, "zed") == 700, "zed's files stay with bob and carol, and so does the count"
    server.stop()
    forgot = run_cli("forget", "--data-dir", str(data), "zed", "bob", "--yes")
    assert forgot.returncode == 0, forgot.stderr
    server = live_server(data_dir=data, open_mode=True, user_files_quota=1000)
    assert tally(server, "zed") == 200, "the 500 bytes charged in the pair came back, no more"


def test_a_file_stored_before_charges_were_recorded_counts_as_its_authors(tmp_path: Path) -> None:
    path = tmp_path / "alice_bob.db"
    old = connect(path, create=True)
    migrate(old, MIGRATIONS[:4])  # version 4: files, no record of whom they were charged to
    old.execute("INSERT INTO conversation (author, message, date_sent) VALUES ('Alice', '', 1)")
    old.execute("INSERT INTO attachment VALUES (1, 'a.bin', 3, 'application/octet-stream')")
    old.execute("INSERT INTO attachment_chunk VALUES (1, 0, x'616263')")
    old.close()
    conversation = Conversation(path)
    assert conversation.charged_bytes() == {"alice": 3}, "as every signed-in send was"
    assert conversation.delete_message(1, "alice").freed == Freed(3, "alice")
    assert conversation.charged_bytes() == {}
    conversation.close()


def test_a_deleted_messages_text_and_files_bytes_leave_the_pair_file(
    live_server: Start,
) -> None:
    """``secure_delete`` on every connection: Debian's SQLite zeroes freed space by
    default, other builds (python.org's, uv's) do not and would keep what was deleted in
    the file's free pages, readable by anyone who copies it."""
    server = live_server()
    alice = register(server.url, "alice")
    register(server.url, "bob")
    secret = "the-door-code-is-7391-do-not-share"
    send_text(server, alice, "alice", "bob", secret)
    secret_bytes = b"file-secret-" + os.urandom(8).hex().encode() + b"-" * 200
    sent = send_file(server, alice, "alice", "bob", secret_bytes)
    assert sent.status_code == 200, sent.text
    send_text(server, alice, "alice", "bob", "a later message")
    history = http.post(
        f"{server.url}/get_message_history",
        data={"user_one": "alice", "user_two": "bob"},
        headers=bearer(alice),
    ).json()["history"]
    for message in history:
        if message["message"] == secret or message["id"] == sent.json()["id"]:
            delete(server, alice, "alice", "bob", message["id"])
    path = pair_path(server, "alice", "bob")
    server.stop()  # the last connection checkpoints the WAL into the file and removes it
    assert not Path(f"{path}-wal").exists()
    stored = path.read_bytes()
    assert secret.encode() not in stored, "the deleted text is still in the pair file"
    assert secret_bytes[:28] not in stored, "the deleted file's bytes are still in the pair file"
    with contextlib.closing(connect(path, create=False)) as conn:
        assert conn.execute("PRAGMA secure_delete").fetchone()[0] == 1
