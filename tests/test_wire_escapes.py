"""C1 controls and bidirectional controls are escaped on the wire, as C0 already is.

A message keeps its exact text (a JSON parser reads back what was sent), but the
bytes of a reply never carry a raw CSI (U+009B) or a bidi override: a terminal that
shows a raw reply (curl, a log viewer) can be neither driven nor reordered by one.
"""

from __future__ import annotations

import json

import pytest

from tests.support import Server, bearer, http, register

pytestmark = pytest.mark.both_tiers

HOSTILE = "csi\u009b2J c1\u0085 rlo\u202eevil\u202c lri\u2066x\u2069 rlm\u200f alm\u061c é 中"
RAW = ["\u009b", "\u0085", "\u202e", "\u202c", "\u2066", "\u2069", "\u200f", "\u061c"]


def test_c1_and_bidi_controls_are_escaped_in_every_reply_that_carries_text(server: Server) -> None:
    url = server.url
    alice, bob = register(url, "alice"), register(url, "bob")
    http.post(f"{url}/add_friend", data={"username": "bob"}, headers=bearer(alice))
    sent = http.post(
        f"{url}/send_message/bob",
        data={"author": "alice", "message": HOSTILE},
        headers=bearer(alice),
    )
    assert sent.status_code == 200, sent.text
    replies = {
        "history page": http.post(
            f"{url}/get_message_history",
            data={"user_one": "alice", "user_two": "bob", "limit": "10"},
            headers=bearer(bob),
        ),
        "whole history": http.post(
            f"{url}/get_message_history",
            data={"user_one": "alice", "user_two": "bob"},
            headers=bearer(bob),
        ),
        "friends": http.get(f"{url}/friends", headers=bearer(alice)),
        "search": http.post(
            f"{url}/search_messages",
            data={"user_one": "alice", "user_two": "bob", "q": "csi"},
            headers=bearer(bob),
        ),
    }
    for what, reply in replies.items():
        assert reply.status_code == 200, (what, reply.text)
        raw = reply.content.decode("utf-8")
        assert not [c for c in RAW if c in raw], f"{what}: a raw control on the wire"
        assert "\\u009b" in raw and "\\u202e" in raw, what
        assert HOSTILE in json.dumps(reply.json(), ensure_ascii=False), f"{what}: text kept exactly"
