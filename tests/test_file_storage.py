"""What big files cost on disk, and the per-user files tally, through the real server.

A pair's ``-wal`` file is cut back after a big upload (``journal_size_limit``), a
deleted file's pages leave a new pair file (``auto_vacuum = INCREMENTAL``), and the
tally of each user's files (``files_bytes`` in the accounts store) always equals the
bytes of the files charged to them, in open mode too, through deletes and ``forget``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from backend.core.usernames import pair_file_name
from backend.storage.database import JOURNAL_SIZE_LIMIT
from tests.support import LiveServer, bearer, http, register

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
