"""Files through the real server: ``POST /send_file/<username>``, ``GET /file/<id>``,
``GET /files``. A file is a message with an attachment, stored in the pair's own
SQLite file (so forget, backup and export carry it), streamed in and out, held to a
size limit, a pair quota, a user quota and the free-disk floor."""

from __future__ import annotations

import asyncio
import io
import json
import os
import sqlite3
import stat
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from backend.core.usernames import pair_file_name
from backend.services.files import MAX_NAME_BYTES, media_type, parse_file_name
from backend.storage.attachments import CHUNK_BYTES, Attachment, Upload
from backend.storage.conversation import MIGRATIONS, Conversation
from backend.storage.database import connect, migrate
from tests.support import LiveServer, ServerProcess, bearer, http, register
from tests.test_server_cli import run_cli

MIB = 1024 * 1024
Start = Callable[..., LiveServer]
Served = LiveServer | ServerProcess


def pair_of(server: Served, *names: str) -> dict[str, str]:
    return {name: register(server.url, name) for name in names}


def pair_path(server: Served, one: str, two: str) -> Path:
    return server.data_dir / pair_file_name(one, two)


def send_file(
    server: Served,
    token: str | None,
    author: str,
    to: str,
    content: bytes,
    *,
    filename: str = "report.pdf",
    content_type: str | None = "application/pdf",
    **fields: str,
) -> httpx.Response:
    part: Any = (filename, content) if content_type is None else (filename, content, content_type)
    return http.post(
        f"{server.url}/send_file/{to}",
        data={"author": author, **fields},
        files={"file": part},
        headers=bearer(token) if token else {},
    )


def get_file(
    server: Served, token: str | None, message_id: int, one: str, two: str
) -> httpx.Response:
    return http.get(
        f"{server.url}/file/{message_id}",
        params={"user_one": one, "user_two": two},
        headers=bearer(token) if token else {},
    )


def list_files(server: Served, token: str | None, one: str, two: str) -> httpx.Response:
    return http.get(
        f"{server.url}/files",
        params={"user_one": one, "user_two": two},
        headers=bearer(token) if token else {},
    )


def history(server: Served, token: str, one: str, two: str) -> list[dict[str, Any]]:
    reply = http.post(
        f"{server.url}/get_message_history",
        data={"user_one": one, "user_two": two},
        headers=bearer(token),
    )
    assert reply.status_code == 200, reply.text
    messages: list[dict[str, Any]] = reply.json()["history"]
    return messages


def test_a_file_round_trip_keeps_every_byte_and_says_what_it_is(live_server: Start) -> None:
    server = live_server()
    t = pair_of(server, "alice", "bob")
    content = os.urandom(3 * MIB + 12345)
    sent = send_file(server, t["alice"], "alice", "bob", content, message="the Q3 numbers")
    assert sent.status_code == 200, sent.text
    body = sent.json()
    assert body["success"] is True and body["duplicate"] is False
    assert body["attachment"] == {
        "name": "report.pdf",
        "size": len(content),
        "type": "application/pdf",
    }

    got = get_file(server, t["bob"], body["id"], "alice", "bob")
    assert got.status_code == 200, got.text
    assert got.content == content
    assert got.headers["content-type"] == "application/pdf"
    assert got.headers["content-length"] == str(len(content))
    assert got.headers["content-disposition"] == "attachment; filename*=UTF-8''report.pdf"
    assert got.headers["x-content-type-options"] == "nosniff"

    messages = history(server, t["bob"], "alice", "bob")
    assert [(m["id"], m["message"], m["attachment"]) for m in messages] == [
        (body["id"], "the Q3 numbers", body["attachment"])
    ]
    listed = list_files(server, t["alice"], "bob", "alice")
    assert listed.status_code == 200, listed.text
    assert listed.json() == {
        "files": [
            {
                "id": body["id"],
                "author": "alice",
                "date_sent": body["date_sent"],
                "name": "report.pdf",
                "size": len(content),
                "type": "application/pdf",
            }
        ]
    }


def test_the_recipient_is_told_and_a_text_message_has_no_attachment(live_server: Start) -> None:
    server = live_server()
    t = pair_of(server, "alice", "bob")
    text = http.post(
        f"{server.url}/send_message/bob",
        data={"author": "alice", "message": "hi"},
        headers=bearer(t["alice"]),
    ).json()
    assert "attachment" not in text
    sent = send_file(
        server, t["alice"], "alice", "bob", b"x" * 10, filename="a.txt", content_type=None
    )
    assert sent.json()["attachment"] == {"name": "a.txt", "size": 10, "type": "text/plain"}
    assert [m["attachment"] for m in history(server, t["bob"], "alice", "bob")] == [
        None,
        sent.json()["attachment"],
    ]
    friends = http.get(f"{server.url}/friends", headers=bearer(t["bob"])).json()
    assert friends["requests"][0]["unread"] == 2, "a file counts as a message"


def test_names_and_types_are_cleaned(live_server: Start) -> None:
    server = live_server()
    t = pair_of(server, "alice", "bob")
    # raw bytes: httpx would escape the control character itself
    boundary = "b0undary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="author"\r\n\r\nalice\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
            'filename="C:\\temp\\..\\../etc/pass wd\x07\x00 ë.png"\r\n'
            "Content-Type: not a type\r\n\r\n"
        ).encode()
        + b"\x89PNG\r\n"
        + f"--{boundary}--\r\n".encode()
    )
    sent = http.post(
        f"{server.url}/send_file/bob",
        content=body,
        headers={
            **bearer(t["alice"]),
            "Content-Type": f"multipart/form-data; boundary={boundary}",
        },
    )
    assert sent.status_code == 200, sent.text
    assert sent.json()["attachment"] == {"name": "pass wd ë.png", "size": 4, "type": "image/png"}
    got = get_file(server, t["bob"], sent.json()["id"], "alice", "bob")
    assert got.headers["content-disposition"] == (
        "attachment; filename*=UTF-8''" + quote("pass wd ë.png", safe="")
    )
    empty = send_file(server, t["alice"], "alice", "bob", b"", filename="", content_type="text/csv")
    assert empty.status_code == 200, empty.text
    assert empty.json()["attachment"] == {"name": "file", "size": 0, "type": "text/csv"}
    assert get_file(server, t["bob"], empty.json()["id"], "alice", "bob").content == b""


def test_only_the_pair_reads_a_file(live_server: Start) -> None:
    server = live_server()
    t = pair_of(server, "alice", "bob", "mallory")
    sent = send_file(server, t["alice"], "alice", "bob", b"secret").json()
    stranger = get_file(server, t["mallory"], sent["id"], "alice", "bob")
    assert stranger.status_code == 403 and stranger.json()["error"] == "forbidden"
    assert stranger.content != b"secret"
    assert list_files(server, t["mallory"], "alice", "bob").json()["error"] == "forbidden"
    # naming her own pair does not reach another pair's message either
    own = get_file(server, t["mallory"], sent["id"], "alice", "mallory")
    assert own.status_code == 404 and own.json()["error"] == "unknown_message"
    assert get_file(server, None, sent["id"], "alice", "bob").status_code == 401
    as_other = send_file(server, t["mallory"], "alice", "bob", b"forged")
    assert as_other.status_code == 403 and as_other.json()["error"] == "forbidden"


def test_unknown_ids_and_messages_without_a_file(live_server: Start) -> None:
    server = live_server()
    t = pair_of(server, "alice", "bob")
    text = http.post(
        f"{server.url}/send_message/bob",
        data={"author": "alice", "message": "no file here"},
        headers=bearer(t["alice"]),
    ).json()
    none = get_file(server, t["bob"], text["id"], "alice", "bob")
    assert none.status_code == 404 and none.json()["error"] == "no_attachment"
    for bad in ("999", "0", "abc", "99999999999999999999999"):
        reply = http.get(
            f"{server.url}/file/{bad}",
            params={"user_one": "alice", "user_two": "bob"},
            headers=bearer(t["bob"]),
        )
        assert reply.status_code == 404 and reply.json()["error"] == "unknown_message", bad
    missing = http.post(
        f"{server.url}/send_file/bob", data={"author": "alice"}, headers=bearer(t["alice"])
    )
    assert missing.status_code in (400, 415) and missing.json()["success"] is False
    no_part = http.post(
        f"{server.url}/send_file/bob",
        files={"other": ("x.txt", b"x")},
        data={"author": "alice"},
        headers=bearer(t["alice"]),
    )
    assert no_part.status_code == 400, no_part.text


def test_a_client_id_retry_stores_the_file_once(live_server: Start) -> None:
    server = live_server()
    t = pair_of(server, "alice", "bob")
    content = os.urandom(300_000)
    first = send_file(server, t["alice"], "alice", "bob", content, client_id="up-1").json()
    again = send_file(server, t["alice"], "alice", "bob", content, client_id="up-1").json()
    assert again["duplicate"] is True and again["id"] == first["id"]
    assert again["attachment"] == first["attachment"]
    assert len(history(server, t["bob"], "alice", "bob")) == 1
    with sqlite3.connect(pair_path(server, "alice", "bob")) as db:
        stored = db.execute("SELECT count(*), sum(size) FROM attachment").fetchone()
        chunks = db.execute("SELECT sum(length(data)) FROM attachment_chunk").fetchone()
    assert stored == (1, len(content)) and chunks == (len(content),)


def test_open_mode_sends_and_reads_files(live_server: Start) -> None:
    server = live_server(open_mode=True)
    sent = send_file(server, None, "alice", "bob", b"seed-era client", filename="n.txt")
    assert sent.status_code == 200, sent.text
    got = get_file(server, None, sent.json()["id"], "alice", "bob")
    assert got.content == b"seed-era client"
    assert [f["id"] for f in list_files(server, None, "alice", "bob").json()["files"]] == [
        sent.json()["id"]
    ]


@pytest.mark.parametrize("size", [0, 1])
def test_a_file_of_exactly_the_limit_passes_and_one_byte_more_is_413(
    live_server: Start, size: int
) -> None:
    server = live_server()
    t = pair_of(server, "alice", "bob")
    limit = server.settings.max_file_bytes
    assert limit == 25 * MIB, "the default"
    content = b"\0" * (limit + size)
    reply = send_file(server, t["alice"], "alice", "bob", content, filename="big.bin")
    if size == 0:
        assert reply.status_code == 200, reply.text
        assert reply.json()["attachment"]["size"] == limit
    else:
        assert reply.status_code == 413, reply.text
        assert reply.json()["error"] == "file_too_large"
        assert str(limit) in reply.json()["message"]
        assert history(server, t["alice"], "alice", "bob") == []


def test_a_body_declared_far_too_large_is_refused_before_it_is_read(live_server: Start) -> None:
    server = live_server(max_file_bytes=1000)
    t = pair_of(server, "alice", "bob")
    reply = send_file(server, t["alice"], "alice", "bob", b"y" * 200_000)
    assert reply.status_code == 413 and reply.json()["error"] == "file_too_large"
    assert "1000 bytes" in reply.json()["message"]


def make_token(server: Served, session: str, scopes: str) -> str:
    made = http.post(
        f"{server.url}/tokens",
        data={"name": f"{scopes} bot", "scopes": scopes},
        headers=bearer(session),
    )
    assert made.status_code == 201, made.text
    token: str = made.json()["token"]
    return token


def test_script_tokens_need_send_to_upload_and_read_to_download(live_server: Start) -> None:
    server = live_server()
    t = pair_of(server, "alice", "bob")
    reader, sender = make_token(server, t["alice"], "read"), make_token(server, t["alice"], "send")
    refused = send_file(server, reader, "alice", "bob", b"no")
    assert refused.status_code == 403 and refused.json()["error"] == "insufficient_scope"
    sent = send_file(server, sender, "alice", "bob", b"from a script")
    assert sent.status_code == 200, sent.text
    for reply in (
        get_file(server, sender, sent.json()["id"], "alice", "bob"),
        list_files(server, sender, "alice", "bob"),
    ):
        assert reply.status_code == 403 and reply.json()["error"] == "insufficient_scope"
    assert get_file(server, reader, sent.json()["id"], "alice", "bob").content == b"from a script"
    assert len(list_files(server, reader, "alice", "bob").json()["files"]) == 1


def delete(server: Served, token: str, message_id: int) -> dict[str, Any]:
    reply = http.post(
        f"{server.url}/delete_message",
        data={"user_one": "alice", "user_two": "bob", "id": str(message_id)},
        headers=bearer(token),
    )
    assert reply.status_code == 200, reply.text
    message: dict[str, Any] = reply.json()["message"]
    return message


def stored_bytes(server: Served, one: str, two: str) -> tuple[int, int]:
    """(attachment rows, bytes in chunk rows) of a pair's file."""
    with sqlite3.connect(pair_path(server, one, two)) as db:
        rows = db.execute("SELECT count(*) FROM attachment").fetchone()[0]
        size = db.execute("SELECT coalesce(sum(length(data)), 0) FROM attachment_chunk").fetchone()
    return rows, size[0]


def test_delete_removes_the_bytes_and_gives_the_quota_back(live_server: Start) -> None:
    server = live_server(user_files_quota=1_000_000)
    t = pair_of(server, "alice", "bob")
    sent = send_file(server, t["alice"], "alice", "bob", os.urandom(700_000)).json()
    assert stored_bytes(server, "alice", "bob") == (1, 700_000)
    over = send_file(server, t["alice"], "alice", "bob", os.urandom(400_000))
    assert over.status_code == 413 and over.json()["error"] == "quota_exceeded"
    assert "1000000" in over.json()["message"]
    gone = delete(server, t["alice"], sent["id"])
    assert gone["deleted"] is True and gone["attachment"] is None
    assert stored_bytes(server, "alice", "bob") == (0, 0)
    missing = get_file(server, t["bob"], sent["id"], "alice", "bob")
    assert missing.status_code == 404 and missing.json()["error"] == "no_attachment"
    assert list_files(server, t["bob"], "alice", "bob").json() == {"files": []}
    assert [m["attachment"] for m in history(server, t["bob"], "alice", "bob")] == [None]
    again = send_file(server, t["alice"], "alice", "bob", os.urandom(900_000))
    assert again.status_code == 200, "the deleted file's bytes were given back: " + again.text


def test_edit_changes_the_caption_and_reactions_and_replies_work(live_server: Start) -> None:
    server = live_server()
    t = pair_of(server, "alice", "bob")
    sent = send_file(server, t["alice"], "alice", "bob", b"v1", filename="plan.txt").json()
    edited = http.post(
        f"{server.url}/edit_message",
        data={"user_one": "alice", "user_two": "bob", "id": str(sent["id"]), "message": "v1!"},
        headers=bearer(t["alice"]),
    ).json()["message"]
    assert edited["message"] == "v1!" and edited["attachment"] == sent["attachment"]
    reacted = http.post(
        f"{server.url}/react",
        data={"user_one": "alice", "user_two": "bob", "id": str(sent["id"]), "emoji": "👍"},
        headers=bearer(t["bob"]),
    ).json()["message"]
    assert reacted["reactions"] == {"👍": ["bob"]} and reacted["attachment"] == sent["attachment"]
    answer = send_file(
        server, t["bob"], "bob", "alice", b"v2", filename="plan.txt", reply_to=str(sent["id"])
    )
    assert answer.status_code == 200, answer.text
    page = history(server, t["alice"], "alice", "bob")
    assert page[-1]["reply_to"] == sent["id"] and page[-1]["attachment"]["name"] == "plan.txt"
    assert get_file(server, t["alice"], sent["id"], "alice", "bob").content == b"v1"


def test_the_pair_quota_counts_every_file_of_the_pair(live_server: Start) -> None:
    server = live_server(pair_files_quota=1000)
    t = pair_of(server, "alice", "bob", "carol")
    assert send_file(server, t["alice"], "alice", "bob", b"a" * 600).status_code == 200
    over = send_file(server, t["bob"], "bob", "alice", b"b" * 401, client_id="x1")
    assert over.status_code == 413 and over.json()["error"] == "quota_exceeded"
    assert "1000 bytes" in over.json()["message"]
    assert len(history(server, t["alice"], "alice", "bob")) == 1, "nothing stored"
    assert send_file(server, t["bob"], "bob", "alice", b"b" * 400).status_code == 200, "exactly"
    assert send_file(server, t["alice"], "alice", "carol", b"c" * 900).status_code == 200, (
        "another pair has its own quota"
    )


def test_the_user_quota_counts_across_pairs_and_a_refusal_costs_nothing(
    live_server: Start,
) -> None:
    server = live_server(user_files_quota=1000)
    t = pair_of(server, "alice", "bob", "carol")
    assert (
        send_file(server, t["alice"], "alice", "bob", b"a" * 600, client_id="f1").status_code == 200
    )
    retried = send_file(server, t["alice"], "alice", "bob", b"a" * 600, client_id="f1")
    assert retried.json()["duplicate"] is True, "a retry is counted once"
    blocked_out = send_file(server, t["alice"], "alice", "carol", b"c" * 401)
    assert blocked_out.status_code == 413 and blocked_out.json()["error"] == "quota_exceeded"
    assert send_file(server, t["bob"], "bob", "carol", b"b" * 1000).status_code == 200, (
        "bob's quota is his own"
    )
    assert send_file(server, t["alice"], "alice", "carol", b"c" * 400).status_code == 200, (
        "the refused and the retried uploads took nothing"
    )
    assert send_file(server, t["alice"], "alice", "carol", b"c").status_code == 413


def test_the_free_disk_floor_must_hold_after_the_file(live_server: Start) -> None:
    probe = live_server()
    stats = os.statvfs(probe.data_dir)
    free_mib = stats.f_bavail * stats.f_frsize // MIB
    # A floor 160 MiB under what is free now. A 128 MiB file would go below it (its spool
    # and its copy in the pair file: 256 MiB at the peak); a text would not. The disk is
    # shared with the suite's other workers, so both margins are wide: they would have to
    # free over 96 MiB, or fill 160 MiB, in the second this takes to change the outcome.
    server = live_server(min_free_disk_mb=free_mib - 160, max_file_bytes=160 * MIB)
    t = pair_of(server, "alice", "bob")
    refused = send_file(server, t["alice"], "alice", "bob", b"\0" * (128 * MIB))
    assert refused.status_code == 503 and refused.json()["error"] == "unavailable", refused.text
    assert "disk" in refused.json()["message"]
    assert history(server, t["alice"], "alice", "bob") == []
    text = http.post(
        f"{server.url}/send_message/bob",
        data={"author": "alice", "message": "still room for words"},
        headers=bearer(t["alice"]),
    )
    assert text.status_code == 200, text.text


def test_forget_erases_the_files_with_the_pair(live_server: Start, tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = live_server(data_dir=data, user_files_quota=1000)
    t = pair_of(server, "alice", "bob")
    sent = send_file(server, t["alice"], "alice", "bob", b"f" * 900).json()
    assert send_file(server, t["alice"], "alice", "bob", b"f" * 200).status_code == 413
    path = pair_path(server, "alice", "bob")
    server.stop()
    forgot = run_cli("forget", "--data-dir", str(data), "alice", "bob", "--yes")
    assert forgot.returncode == 0, forgot.stderr
    assert not path.exists() and not Path(f"{path}-wal").exists()
    server = live_server(data_dir=data, user_files_quota=1000)
    gone = get_file(server, t["bob"], sent["id"], "alice", "bob")
    assert gone.status_code == 404 and gone.json()["error"] == "unknown_message"
    assert list_files(server, t["bob"], "alice", "bob").json() == {"files": []}
    assert send_file(server, t["alice"], "alice", "bob", b"f" * 1000).status_code == 200, (
        "the forgotten files' bytes were given back to their author's quota"
    )


def test_a_backup_holds_the_files_bytes(live_server: Start, tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = live_server(data_dir=data)
    t = pair_of(server, "alice", "bob")
    content = os.urandom(600_000)
    sent = send_file(server, t["alice"], "alice", "bob", content).json()
    dest = tmp_path / "backup"
    done = run_cli("backup", "--data-dir", str(data), str(dest))
    assert done.returncode == 0, done.stderr
    copy = dest / pair_file_name("alice", "bob")
    with sqlite3.connect(copy) as db:
        chunks = db.execute(
            "SELECT data FROM attachment_chunk WHERE message_id = ? ORDER BY seq", (sent["id"],)
        ).fetchall()
        row = db.execute("SELECT name, size, type FROM attachment").fetchone()
    assert b"".join(chunk for (chunk,) in chunks) == content
    assert row == ("report.pdf", len(content), "application/pdf")
    server.stop()
    restored = live_server(data_dir=dest)  # the backup serves the file as it was
    assert get_file(restored, t["bob"], sent["id"], "alice", "bob").content == content


def test_export_writes_the_files_beside_the_transcript(live_server: Start, tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = live_server(data_dir=data)
    t = pair_of(server, "alice", "bob")
    content = os.urandom(300_000)
    sent = send_file(server, t["alice"], "alice", "bob", content, message="numbers").json()
    http.post(
        f"{server.url}/send_message/alice",
        data={"author": "bob", "message": "thanks"},
        headers=bearer(t["bob"]),
    )
    out = tmp_path / "out" / "alice-bob.jsonl"
    out.parent.mkdir()
    done = run_cli("export", "--data-dir", str(data), "alice", "bob", "--output", str(out))
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    saved = f"alice-bob.jsonl.files/{sent['id']}-report.pdf"
    assert lines[0]["attachment"] == sent["attachment"] and lines[0]["file"] == saved
    assert lines[0]["message"] == "numbers" and "file" not in lines[1]
    assert (out.parent / saved).read_bytes() == content
    assert stat.S_IMODE((out.parent / saved).stat().st_mode) == 0o600
    md = tmp_path / "out" / "alice-bob.md"
    done = run_cli(
        "export", "--data-dir", str(data), "alice", "bob", "--format", "md", "--output", str(md)
    )
    assert done.returncode == 0, done.stderr
    assert f"  file: report.pdf ({len(content)} bytes, application/pdf) → " in md.read_text()
    assert (md.parent / f"alice-bob.md.files/{sent['id']}-report.pdf").read_bytes() == content
    printed = run_cli("export", "--data-dir", str(data), "alice", "bob")
    assert json.loads(printed.stdout.splitlines()[0])["attachment"] == sent["attachment"]
    assert "1 file(s) named, not written" in printed.stderr
    inside = run_cli("export", "--data-dir", str(data), "alice", "bob", "--output", str(data / "x"))
    assert inside.returncode != 0 and "inside the data folder" in inside.stderr


def test_under_the_real_server_a_file_streams_both_ways_and_survives_sigkill(
    server_process: Callable[..., ServerProcess],
) -> None:
    proc = server_process()
    t = {name: register(proc.url, name) for name in ("alice", "bob")}
    content = os.urandom(5 * MIB + 7)  # past the front's in-memory part: spooled to disk
    sent = send_file(proc, t["alice"], "alice", "bob", content, client_id="k1")
    assert sent.status_code == 200, sent.text
    proc.kill()  # SIGKILL right after the acknowledgement
    proc = server_process(data_dir=proc.data_dir)
    got = get_file(proc, t["bob"], sent.json()["id"], "alice", "bob")
    assert got.status_code == 200 and got.content == content
    assert got.headers["content-length"] == str(len(content))
    part = http.get(
        f"{proc.url}/file/{sent.json()['id']}",
        params={"user_one": "alice", "user_two": "bob"},
        headers={**bearer(t["bob"]), "Range": "bytes=3000000-3000099"},
    )
    assert part.status_code == 206 and part.content == content[3_000_000:3_000_100]
    retried = send_file(proc, t["alice"], "alice", "bob", content, client_id="k1")
    assert retried.json()["duplicate"] is True and retried.json()["id"] == sent.json()["id"]


def test_under_the_real_server_the_limit_is_exact(
    server_process: Callable[..., ServerProcess],
) -> None:
    proc = server_process()
    alice = register(proc.url, "alice")
    register(proc.url, "bob")
    limit = 25 * MIB
    exact = send_file(proc, alice, "alice", "bob", b"\0" * limit)
    assert exact.status_code == 200 and exact.json()["attachment"]["size"] == limit
    over = send_file(proc, alice, "alice", "bob", b"\0" * (limit + 1))
    assert over.status_code == 413 and over.json()["error"] == "file_too_large", over.text
    far = send_file(proc, alice, "alice", "bob", b"\0" * (limit + 200_000))
    assert far.status_code == 413 and far.json()["error"] == "file_too_large", far.text
    assert str(limit) in far.json()["message"]
    text = http.post(  # other routes keep their small body limit
        f"{proc.url}/send_message/bob",
        data={"author": "alice", "message": "x" * 100_000},
        headers=bearer(alice),
    )
    assert text.status_code == 413 and text.json()["error"] == "too_large"


def test_a_client_that_writes_its_whole_upload_first_reads_the_413(
    server_process: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    """An asynchronous httpx client (the TUI's and ``pairchat send``'s) writes the whole
    body before it reads the reply: the server reads and drops the rest of a refused
    upload before answering, so the client gets the 413 and its reason instead of a
    reset connection - with a Content-Length (refused before reading) and without one
    (chunked: refused once past the limit). Before, every try here lost the answer."""
    proc = server_process(env={"PAIRCHAT_MAX_FILE_BYTES": str(MIB)})
    alice = register(proc.url, "alice")
    register(proc.url, "bob")
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(32 * MIB))

    async def chunks() -> AsyncIterator[bytes]:
        with big.open("rb") as source:
            while chunk := source.read(64 * 1024):
                yield chunk

    async def tries() -> list[tuple[int, str]]:
        answers = []
        async with httpx.AsyncClient(headers=bearer(alice), timeout=60) as client:
            for _ in range(3):
                with big.open("rb") as source:
                    reply = await client.post(
                        f"{proc.url}/send_file/bob",
                        data={"author": "alice"},
                        files={"file": ("big.bin", source)},
                    )
                answers.append((reply.status_code, reply.json()["error"]))
            streamed = await client.post(
                f"{proc.url}/send_file/bob?author=alice",
                content=chunks(),
                headers={"Content-Type": "application/octet-stream"},
            )
            answers.append((streamed.status_code, streamed.json()["error"]))
        return answers

    answers = asyncio.run(tries())
    assert answers[:3] == [(413, "file_too_large")] * 3
    assert answers[3] == (413, "file_too_large")  # past the limit before any parsing


@pytest.mark.parametrize(
    ("raw", "name"),
    [
        ("report.pdf", "report.pdf"),
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\me\\photo.jpg", "photo.jpg"),
        ("dir/", "file"),
        ("", "file"),
        (None, "file"),
        (".", "file"),
        ("..", "file"),
        ("a/..", "file"),
        ("  spaced name.txt  ", "spaced name.txt"),
        ("nul\x00and\x1b[31mred\x7f.txt", "nuland[31mred.txt"),
        ("bidi\u202etxt.exe", "biditxt.exe"),
        ("line\nbreak\r.txt", "linebreak.txt"),
        ("e\u0301t\u00e9.txt", "\u00e9t\u00e9.txt"),  # NFC
        ("é" * 200 + ".tar.gz", "é" * 126 + ".gz"),  # 255 bytes, the extension kept
        ("x" * 300, "x" * 255),
        ("ü" * 200, "ü" * 127),  # never half a character
    ],
)
def test_a_file_name_is_a_plain_base_name_of_at_most_255_bytes(raw: str | None, name: str) -> None:
    cleaned = parse_file_name(raw)
    assert cleaned == name
    assert len(cleaned.encode("utf-8")) <= MAX_NAME_BYTES


@pytest.mark.parametrize(
    ("declared", "name", "kind"),
    [
        ("application/pdf", "x.bin", "application/pdf"),
        ("Image/PNG; charset=binary", "x", "image/png"),
        ("not a type", "photo.jpg", "image/jpeg"),
        ("text/", "notes.txt", "text/plain"),
        ("", "archive.tar.gz", "application/x-tar"),
        (None, "unknown.zzz-nope", "application/octet-stream"),
        ("a/b/c", "noext", "application/octet-stream"),
    ],
)
def test_a_media_type_is_the_senders_when_well_formed_else_guessed(
    declared: str | None, name: str, kind: str
) -> None:
    assert media_type(declared, name) == kind


def test_two_uploads_at_once_cannot_both_slip_under_a_quota(live_server: Start) -> None:
    server = live_server(pair_files_quota=1000, user_files_quota=1000)
    t = pair_of(server, "alice", "bob")
    statuses: list[int] = []

    def upload(who: str, to: str) -> None:
        statuses.append(send_file(server, t[who], who, to, b"q" * 600).status_code)

    threads = [
        threading.Thread(target=upload, args=("alice", "bob")),
        threading.Thread(target=upload, args=("bob", "alice")),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(statuses) == [200, 413], "the pair quota is checked in the write transaction"
    assert stored_bytes(server, "alice", "bob") == (1, 600)


def test_a_file_moves_the_feed_as_a_message_does_and_a_block_refuses_it(
    live_server: Start,
) -> None:
    server = live_server()
    t = pair_of(server, "alice", "bob")
    cursor = http.get(f"{server.url}/updates", headers=bearer(t["bob"])).json()["cursor"]
    sent = send_file(server, t["alice"], "alice", "bob", b"for you").json()
    changed = http.get(
        f"{server.url}/updates", params={"since": cursor}, headers=bearer(t["bob"])
    ).json()["changed"]
    assert [(c["username"], c["last_id"], c["unread"]) for c in changed] == [
        ("alice", sent["id"], 1)
    ]
    blocked = http.post(
        f"{server.url}/block_friend", data={"username": "alice"}, headers=bearer(t["bob"])
    )
    assert blocked.status_code == 200, blocked.text
    refused = send_file(server, t["alice"], "alice", "bob", b"again")
    assert refused.status_code == 403 and refused.json()["error"] == "blocked"
    assert stored_bytes(server, "alice", "bob") == (1, len(b"for you"))


def test_a_big_file_never_sits_in_the_servers_memory_whole(
    server_process: Callable[..., ServerProcess],
) -> None:
    proc = server_process()
    t = {name: register(proc.url, name) for name in ("alice", "bob")}
    warm = send_file(proc, t["alice"], "alice", "bob", os.urandom(2 * MIB))  # pools, caches
    assert get_file(proc, t["bob"], warm.json()["id"], "alice", "bob").status_code == 200
    (worker,) = proc.worker_pids()
    before = peak_rss_mib(worker)
    content = os.urandom(24 * MIB)
    sent = send_file(proc, t["alice"], "alice", "bob", content)
    assert sent.status_code == 200, sent.text
    with http.stream(
        "GET",
        f"{proc.url}/file/{sent.json()['id']}",
        params={"user_one": "alice", "user_two": "bob"},
        headers=bearer(t["bob"]),
    ) as reply:
        received = bytearray()
        for chunk in reply.iter_bytes():
            received += chunk
    assert bytes(received) == content
    grown = peak_rss_mib(worker) - before
    assert grown < 12, f"the worker's peak grew {grown:.1f} MiB for a 24 MiB file in and out"


def peak_rss_mib(pid: int) -> float:
    """The most resident memory the process has had (VmHWM), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM in /proc")


def test_the_author_may_be_named_in_the_query_for_the_multi_node_router(
    live_server: Start,
) -> None:
    server = live_server()
    t = pair_of(server, "alice", "bob")
    sent = http.post(
        f"{server.url}/send_file/bob",
        params={"author": "alice"},
        files={"file": ("q.txt", b"routed")},
        headers=bearer(t["alice"]),
    )
    assert sent.status_code == 200, sent.text
    assert history(server, t["bob"], "alice", "bob")[0]["author"] == "alice"
    as_bob = http.post(
        f"{server.url}/send_file/alice",
        params={"author": "bob"},
        files={"file": ("q.txt", b"forged")},
        headers=bearer(t["alice"]),
    )
    assert as_bob.status_code == 403 and as_bob.json()["error"] == "forbidden"


def test_a_message_and_its_bytes_are_stored_together_or_not_at_all(tmp_path: Path) -> None:
    conversation = Conversation(tmp_path / "alice_bob.db")
    conversation.add_message("bob", "before", 1764012345)
    given = 0

    def failing_read(size: int) -> bytes:
        nonlocal given
        given += 1
        if given == 3:  # a disk error, a killed process: mid-file
            raise OSError("the spool file went away")
        return b"z" * size

    with pytest.raises(OSError):
        conversation.add_message(
            "alice", "", 1764012346, upload=Upload("big.bin", "x/y", 3 * CHUNK_BYTES, failing_read)
        )
    with sqlite3.connect(tmp_path / "alice_bob.db") as db:
        assert db.execute("SELECT count(*) FROM attachment_chunk").fetchone() == (0,)
        assert db.execute("SELECT count(*) FROM attachment").fetchone() == (0,)
    assert [m.message for m in conversation.get_history()] == ["before"]
    short = Upload("short.bin", "x/y", 10, io.BytesIO(b"only 9 b.").read)
    with pytest.raises(ValueError):  # fewer bytes than were counted: refused whole
        conversation.add_message("alice", "", 1764012347, upload=short)
    assert conversation.files() == []
    conversation.close()


def test_a_pair_file_from_before_files_opens_and_gains_them(tmp_path: Path) -> None:
    path = tmp_path / "alice_bob.db"
    old = connect(path, create=True)
    migrate(old, MIGRATIONS[:3])  # version 3: reactions, no files
    old.execute("INSERT INTO conversation (author, message, date_sent) VALUES ('bob', 'hi', 1)")
    old.close()
    conversation = Conversation(path)
    assert [m.attachment for m in conversation.get_history()] == [None]
    stored = conversation.add_message(
        "alice", "", 2, upload=Upload("a.txt", "text/plain", 3, io.BytesIO(b"abc").read)
    )
    assert stored.attachment == Attachment("a.txt", 3, "text/plain")
    assert b"".join(conversation.file_chunks(stored.id)) == b"abc"
    conversation.close()


def test_a_chunked_upload_is_read_as_a_stream_too(live_server: Start) -> None:
    server = live_server(max_file_bytes=400_000)
    t = pair_of(server, "alice", "bob")
    boundary = "chunky"
    content = os.urandom(300_000)

    def body(file: bytes) -> Iterator[bytes]:  # a generator: httpx sends it chunked
        yield (
            f'--{boundary}\r\nContent-Disposition: form-data; name="author"\r\n\r\nalice\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
            'filename="c.bin"\r\n\r\n'
        ).encode()
        for start in range(0, len(file), 65536):
            yield file[start : start + 65536]
        yield f"\r\n--{boundary}--\r\n".encode()

    headers = {**bearer(t["alice"]), "Content-Type": f"multipart/form-data; boundary={boundary}"}
    sent = http.post(f"{server.url}/send_file/bob", content=body(content), headers=headers)
    assert sent.status_code == 200, sent.text
    assert get_file(server, t["bob"], sent.json()["id"], "alice", "bob").content == content
    over = http.post(
        f"{server.url}/send_file/bob", content=body(os.urandom(500_000)), headers=headers
    )
    assert over.status_code == 413 and over.json()["error"] == "file_too_large", over.text


def test_a_byte_range_reads_part_of_a_file(live_server: Start) -> None:
    server = live_server()
    t = pair_of(server, "alice", "bob")
    content = os.urandom(CHUNK_BYTES * 2 + 1000)  # three stored chunks
    file_id = send_file(server, t["alice"], "alice", "bob", content).json()["id"]
    size = len(content)

    def ranged(spec: str) -> httpx.Response:
        return http.get(
            f"{server.url}/file/{file_id}",
            params={"user_one": "alice", "user_two": "bob"},
            headers={**bearer(t["bob"]), "Range": spec},
        )

    for spec, first, last in [
        (f"bytes={CHUNK_BYTES - 10}-{CHUNK_BYTES + 9}", CHUNK_BYTES - 10, CHUNK_BYTES + 9),
        (f"bytes={CHUNK_BYTES * 2 + 5}-", CHUNK_BYTES * 2 + 5, size - 1),
        ("bytes=-100", size - 100, size - 1),
        ("bytes=0-0", 0, 0),
        (f"bytes=10-{size * 2}", 10, size - 1),
    ]:
        part = ranged(spec)
        assert part.status_code == 206, spec
        assert part.content == content[first : last + 1], spec
        assert part.headers["content-range"] == f"bytes {first}-{last}/{size}", spec
        assert part.headers["content-length"] == str(last - first + 1), spec
    for ignored in (f"bytes={size}-", "bytes=5-2", "bytes=0-1,5-6", "items=0-1", "bytes=-0"):
        whole = ranged(ignored)
        assert whole.status_code == 200 and whole.content == content, ignored
        assert whole.headers["accept-ranges"] == "bytes"


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(lambda: b"x" * (20 * MIB), id="no boundary"),
        pytest.param(
            lambda: (
                b'--zzz\r\nContent-Disposition: form-data; name="file"; filename="a"\r\n'
                + b"X-Long: "
                + b"h" * (20 * MIB)
            ),
            id="headers that never end",
        ),
    ],
)
def test_a_multipart_body_that_never_reaches_a_part_is_not_held_in_memory(
    live_server: Start, body: Callable[[], bytes]
) -> None:
    """The decoder keeps every byte it has read until a boundary (or a part's blank
    line) comes, so what the route reads of such a body bounds what it holds: it must
    refuse the body after a few reads, not read (and keep) all 20 MiB of it.

    Counted, not measured: a process-wide ``tracemalloc`` peak also counts whatever
    other threads of a long-lived test worker allocate meanwhile (it failed in CI so).
    """
    server = live_server(max_file_bytes=30 * MIB)
    t = pair_of(server, "alice", "bob")
    sent = CountingReader(body())
    assert server.app is not None  # the app in this process: no server's own buffering
    client = server.app.test_client()
    reply = client.post(
        "/send_file/bob",
        input_stream=sent,
        headers={**bearer(t["alice"]), "Content-Type": "multipart/form-data; boundary=zzz"},
    )
    assert reply.status_code == 400, reply.text
    assert reply.json is not None
    assert reply.json["success"] is False and reply.json["error"] == "bad_request"
    size = len(sent.getbuffer())
    assert sent.read_bytes < 512 * 1024, f"{sent.read_bytes} bytes read of a {size} byte body"


class CountingReader(io.BytesIO):
    """A request body that counts the bytes the app has read of it."""

    read_bytes = 0

    def read(self, size: int | None = -1, /) -> bytes:
        data = super().read(size)
        self.read_bytes += len(data)
        return data

    def readinto(self, buffer: Any, /) -> int:
        count = super().readinto(buffer)
        self.read_bytes += count
        return count


def test_export_cuts_a_long_file_name_to_fit_beside_its_id(
    live_server: Start, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    server = live_server(data_dir=data)
    t = pair_of(server, "alice", "bob")
    content = os.urandom(10_000)
    long_name = "r" * 300 + ".pdf"
    sent = send_file(server, t["alice"], "alice", "bob", content, filename=long_name).json()
    assert len(sent["attachment"]["name"].encode()) == MAX_NAME_BYTES  # stored cut to 255
    out = tmp_path / "out" / "alice-bob.jsonl"
    out.parent.mkdir()
    done = run_cli("export", "--data-dir", str(data), "alice", "bob", "--output", str(out))
    assert done.returncode == 0, done.stderr
    [line] = [json.loads(line) for line in out.read_text().splitlines()]
    saved = Path(line["file"])
    assert saved.parent.name == "alice-bob.jsonl.files"
    assert saved.name.startswith(f"{sent['id']}-rrr") and saved.name.endswith(".pdf")
    assert len(saved.name.encode()) <= 255
    assert (out.parent / saved).read_bytes() == content
    md = tmp_path / "out" / "alice-bob.md"
    done = run_cli(
        "export", "--data-dir", str(data), "alice", "bob", "--format", "md", "--output", str(md)
    )
    assert done.returncode == 0, done.stderr
    assert f"alice-bob.md.files/{saved.name}" in md.read_text()
    assert (md.parent / "alice-bob.md.files" / saved.name).read_bytes() == content
