"""protocol/: the one wire schema. It imports no web, TUI or HTTP library; the backend's
replies keep their exact bytes; the client decodes with it and refuses what does not fit."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from backend.http import replies
from backend.services.chat import Feed, Friends
from backend.storage.accounts import Contact
from backend.storage.attachments import Attachment
from backend.storage.conversation import Message, Page, Stored
from tests.support import Server, bearer, http, register
from tui.client.http import ApiError, PairchatClient
from tui.client.models import BadReply


def body(value: Any) -> bytes:
    """A reply's bytes as the app sends them (a Response, or a dict Flask encodes)."""
    if hasattr(value, "get_data"):
        data: bytes = value.get_data()
        return data
    from backend.http.encoding import encode

    return encode(value) + b"\n"


def test_protocol_imports_no_web_tui_or_http_library() -> None:
    code = (
        "import sys, protocol, protocol.models, protocol.routes, protocol.codec;"
        "bad = {'flask', 'werkzeug', 'textual', 'httpx', 'backend', 'tui', 'yaml'};"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


SEEDLIKE = Message(7, "alice", "hi ü \x00 \u2028", 1764012345, None, 9)
WITH_CLIENT_ID = Message(8, "bob", "", 1764012346, "c-1", 10, 1764012399, True, 7)
OLD_FILE = Message(
    1, "Alice", "from the seed", "2024-01-02 03:04:05.678", None, 1,
    reactions={"👍": ["alice", "bob"]}, attachment=Attachment("notes.txt", 5, "text/plain"),
)  # fmt: skip


def test_reply_bytes_stay_what_clients_read() -> None:
    """The seed routes' shapes, byte for byte (key order, optional keys left out, not null)."""
    assert body(replies.success()) == b'{"success":true}\n'
    assert body(replies.sent(Stored(12, 1764012345, False, 12))) == (
        b'{"success":true,"id":12,"date_sent":1764012345,"duplicate":false,"rev":12}\n'
    )
    with_file = Stored(13, 1764012345, False, 13, Attachment("a b.pdf", 3, "application/pdf"))
    assert body(replies.sent(with_file)) == (
        b'{"success":true,"id":13,"date_sent":1764012345,"duplicate":false,"rev":13,'
        b'"attachment":{"name":"a b.pdf","size":3,"type":"application/pdf"}}\n'
    )
    page = Page([SEEDLIKE, WITH_CLIENT_ID, OLD_FILE], has_more=False, rev=10)
    assert body(replies.history(page)) == (
        b'{"history":['
        b'{"id":7,"author":"alice","message":"hi \xc3\xbc \\u0000 \xe2\x80\xa8",'
        b'"date_sent":1764012345,"rev":9,"edited_at":null,"deleted":false,"reply_to":null,'
        b'"reactions":{},"attachment":null},'
        b'{"id":8,"author":"bob","message":"","date_sent":1764012346,"rev":10,'
        b'"edited_at":1764012399,"deleted":true,"reply_to":7,"client_id":"c-1","reactions":{},'
        b'"attachment":null},'
        b'{"id":1,"author":"Alice","message":"from the seed",'
        b'"date_sent":"2024-01-02 03:04:05.678","rev":1,"edited_at":null,"deleted":false,'
        b'"reply_to":null,"reactions":{"\xf0\x9f\x91\x8d":["alice","bob"]},'
        b'"attachment":{"name":"notes.txt","size":5,"type":"text/plain"}}'
        b'],"has_more":false,"rev":10}\n'
    )
    around = Page([SEEDLIKE], has_more=True, rev=9, has_more_after=False)
    assert body(replies.history(around)).endswith(
        b'"has_more":true,"rev":9,"has_more_after":false}\n'
    )
    streamed = b"".join(replies.history_stream(iter([[SEEDLIKE, WITH_CLIENT_ID], [OLD_FILE]]), 10))
    assert streamed == body(replies.history(page))
    assert json.loads(body(replies.error("same_user", "no"))) == {
        "success": False,
        "error": "same_user",
        "message": "no",
    }
    assert list(json.loads(body(replies.error("x", "y")))) == ["success", "error", "message"]


def test_friend_and_change_bytes() -> None:
    contact = Contact("bob", None, True, False, False, 8, 1764012346, 1, 3, 5)
    feed = body(replies.feed(Feed(5, [contact])))
    change = json.loads(feed)["changed"][0]
    assert list(change) == [
        "username", "display_name", "last_id", "unread", "last_activity", "listed",
        "blocked", "deleted", "rev", "typing", "request", "read_up_to",
    ]  # fmt: skip
    assert json.loads(feed)["cursor"] == "5"
    # a feed row; the last field is its last_complete, which is not sent
    friend = (
        "bob", "Bob", 1, WITH_CLIENT_ID, False, 0, 10, 7, True, False, 3, True,
    )  # fmt: skip
    listed = json.loads(body(replies.friends(Friends([friend], [], []))))  # type: ignore[list-item]
    assert list(listed["friends"][0]) == [
        "username", "display_name", "unread", "last_message", "deleted", "rev", "typing",
        "request", "read_up_to", "peer_read_up_to",
    ]  # fmt: skip
    assert listed["friends"][0]["last_message"]["client_id"] == "c-1"
    assert listed["friends"][0]["read_up_to"] == 3


def _reading(path: str, reply: bytes) -> Any:
    """What the client makes of ``reply`` (served for ``path`` by a stub transport)."""
    import asyncio

    import httpx

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=reply, headers={"content-type": "application/json"})

    async def run() -> Any:
        client = PairchatClient("http://stub", "t", username="alice",
                                transport=httpx.MockTransport(handler))  # fmt: skip
        async with client:
            if path == "history":
                return await client.history("bob")
            if path == "friends":
                return await client.friends()
            if path == "send":
                return await client.send("bob", "hi")
            return await client.updates()

    return asyncio.run(run())


@pytest.mark.parametrize(
    "path,reply",
    [
        ("history", b'{"history": [{"id": "x", "author": "a", "message": "m", "date_sent": 1}]}'),
        ("history", b'{"history": {"id": 1}}'),
        ("history", b'{"history": [{"author": "a", "message": "m", "date_sent": 1}]}'),
        ("friends", b'{"friends": [{"display_name": "no username"}]}'),
        ("send", b'{"success": true, "date_sent": 1}'),
        ("updates", b'{"cursor": "1", "changed": [{"username": 5}]}'),
        ("updates", b"[1, 2]"),
    ],
)  # fmt: skip
def test_a_reply_that_does_not_decode_is_bad_reply(path: str, reply: bytes) -> None:
    with pytest.raises(ApiError) as caught:
        _reading(path, reply)
    assert caught.value.code == "bad_reply"
    assert isinstance(caught.value.__cause__, BadReply) or caught.value.status == 200


def test_the_client_still_reads_older_servers() -> None:
    """The seed's history (no rev, no has_more, date_sent as text) and an old send reply."""
    page = _reading(
        "history",
        b'{"history": [{"id": 1, "author": "alice", "message": "hi", "date_sent": "2024"}]}',
    )
    assert page.messages[0].text == "hi"
    assert page.messages[0].date_sent == "2024"
    assert (page.has_more, page.rev, page.messages[0].rev) == (False, 0, 0)
    sent = _reading("send", b'{"success": true, "id": 3, "date_sent": 5}')
    assert (sent.id, sent.rev, sent.duplicate) == (3, 0, False)


def test_every_reply_of_a_session_decodes_strictly(server: Server) -> None:
    """Real replies fit the models with nothing left over and nothing missing."""
    import msgspec

    from protocol import decode
    from protocol import models as wire

    alice, bob = register(server.url, "alice"), register(server.url, "bob")
    pair = {"user_one": "alice", "user_two": "bob"}
    http.post(f"{server.url}/add_friend", data={"username": "bob"}, headers=bearer(alice))
    sent = http.post(
        f"{server.url}/send_message/alice",
        data={"author": "bob", "message": "hi", "client_id": "c1"},
        headers=bearer(bob),
    )
    checks: list[tuple[bytes, type[wire.Model]]] = [
        (sent.content, wire.Sent),
        (http.post(f"{server.url}/get_message_history", data=pair,
                   headers=bearer(alice)).content, wire.History),
        (http.get(f"{server.url}/friends", headers=bearer(alice)).content, wire.Friends),
        (http.get(f"{server.url}/updates", headers=bearer(alice)).content, wire.Feed),
        (http.get(f"{server.url}/me", headers=bearer(alice)).content, wire.Account),
    ]  # fmt: skip
    for content, model in checks:
        decoded = decode(content, model)
        # Encoding what was decoded gives back the same document: no key unknown to the model.
        assert json.loads(msgspec.json.encode(decoded)) == json.loads(content), model
