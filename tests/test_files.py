"""Files through the real server: ``POST /send_file/<username>``, ``GET /file/<id>``,
``GET /files``. A file is a message with an attachment, stored in the pair's own
SQLite file (so forget, backup and export carry it), streamed in and out, held to a
size limit, a pair quota, a user quota and the free-disk floor."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from backend.core.usernames import pair_file_name
from tests.support import LiveServer, bearer, http, register

MIB = 1024 * 1024
Start = Callable[..., LiveServer]


def pair_of(server: LiveServer, *names: str) -> dict[str, str]:
    return {name: register(server.url, name) for name in names}


def pair_path(server: LiveServer, one: str, two: str) -> Path:
    return server.data_dir / pair_file_name(one, two)


def send_file(
    server: LiveServer,
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
    server: LiveServer, token: str | None, message_id: int, one: str, two: str
) -> httpx.Response:
    return http.get(
        f"{server.url}/file/{message_id}",
        params={"user_one": one, "user_two": two},
        headers=bearer(token) if token else {},
    )


def list_files(server: LiveServer, token: str | None, one: str, two: str) -> httpx.Response:
    return http.get(
        f"{server.url}/files",
        params={"user_one": one, "user_two": two},
        headers=bearer(token) if token else {},
    )


def history(server: LiveServer, token: str, one: str, two: str) -> list[dict[str, Any]]:
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
