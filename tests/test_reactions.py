"""Reactions through the real server: one per person per message (set, change, remove),
carried by the pair's revision so ``after_rev`` and both feeds see them; emoji checked;
a deleted message takes none; refused as a send is (block, rate)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from backend.server.export import jsonl_line, markdown_lines
from backend.storage.conversation import Conversation
from tests.people import Person, meet
from tests.support import Server, bearer, http, register

pytestmark = pytest.mark.both_tiers  # in-process (fast tier) and live


def test_one_reaction_per_person_set_changed_and_removed(server: Server) -> None:
    p = meet(server, "alice", "bob")
    sent = p["bob"].send("alice", "lunch?")
    other = p["alice"].send("bob", "sure")
    assert p["alice"].messages("bob")[0]["reactions"] == {}, "none: {}"
    first = p["alice"].react("bob", sent["id"], "👍")
    assert first["reactions"] == {"👍": ["alice"]} and first["rev"] == other["rev"] + 1
    both = p["bob"].react("alice", sent["id"], "👍")
    assert both["reactions"] == {"👍": ["alice", "bob"]}
    changed = p["alice"].react("bob", sent["id"], "❤️")
    assert changed["reactions"] == {"❤️": ["alice"], "👍": ["bob"]}
    again = p["alice"].react("bob", sent["id"], "❤️")
    assert again == changed, "the same reaction again changes nothing (no new revision)"
    removed = p["alice"].react("bob", sent["id"], "")
    assert removed["reactions"] == {"👍": ["bob"]} and removed["rev"] == changed["rev"] + 1
    assert p["alice"].react("bob", sent["id"], "")["rev"] == removed["rev"], "none to remove"
    history = {m["id"]: m["reactions"] for m in p["alice"].messages("bob")}
    assert history == {sent["id"]: {"👍": ["bob"]}, other["id"]: {}}


def test_after_rev_and_both_feeds_carry_a_reaction(server: Server) -> None:
    p = meet(server, "alice", "bob")
    sent = p["alice"].send("bob", "shipped")
    start = p["bob"].history("alice", after_rev=0)["rev"]
    cursors = {name: person.cursor() for name, person in p.items()}
    reacted = p["bob"].react("alice", sent["id"], "🎉")
    changed = p["alice"].history("bob", after_rev=start)
    assert [(m["id"], m["reactions"]) for m in changed["history"]] == [
        (sent["id"], {"🎉": ["bob"]})
    ]
    assert changed["rev"] == reacted["rev"]
    for name, other in (("alice", "bob"), ("bob", "alice")):
        assert p[name].changes(cursors[name])[other]["rev"] == reacted["rev"], name
    assert p["alice"].friend("bob")["unread"] == 0, "a reaction is no new message"
    around = p["alice"].history("bob", around_id=sent["id"], limit=3)["history"]
    assert around[0]["reactions"] == {"🎉": ["bob"]}
    found = p["alice"].search("bob", "shipped")["results"]
    assert found[0]["reactions"] == {"🎉": ["bob"]}


@pytest.mark.parametrize(
    "emoji", ["❤️", "❤", "👍🏽", "👨\u200d👩\u200d👧\u200d👦", "🏳️\u200d🌈", "🇫🇷", "1️⃣", "🙏"]
)
def test_one_emoji_grapheme_is_a_reaction(server: Server, emoji: str) -> None:
    p = meet(server, "alice", "bob")
    sent = p["bob"].send("alice", "hi")
    assert p["alice"].react("bob", sent["id"], emoji)["reactions"] == {emoji: ["alice"]}


@pytest.mark.parametrize(
    "emoji", ["a", "👍👍", "👍 ", " ", "\u200d", "🏽", "ok", "😀" * 9, "<b>", "\x00"]
)
def test_anything_else_is_an_invalid_field(server: Server, emoji: str) -> None:
    p = meet(server, "alice", "bob")
    sent = p["bob"].send("alice", "hi")
    p["alice"].refused("/react", 400, "invalid_field", **p["alice"].pair("bob"), id=sent["id"],
                       emoji=emoji)  # fmt: skip


def test_missing_unknown_and_strangers(server: Server) -> None:
    p = meet(server, "alice", "bob")
    carol = Person(server, "carol")
    sent = p["bob"].send("alice", "hi")
    pair = p["alice"].pair("bob")
    p["alice"].refused("/react", 400, "missing_field", **pair, id=sent["id"])
    p["alice"].refused("/react", 400, "missing_field", **pair, emoji="👍")
    p["alice"].refused("/react", 404, "unknown_message", **pair, id=99, emoji="👍")
    carol.refused("/react", 403, "forbidden", **pair, id=sent["id"], emoji="👍")
    assert p["bob"].messages("alice")[0]["reactions"] == {}


def test_a_deleted_message_loses_its_reactions_and_takes_no_more(server: Server) -> None:
    p = meet(server, "alice", "bob")
    sent = p["alice"].send("bob", "oops")
    p["bob"].react("alice", sent["id"], "😂")
    deleted = p["alice"].delete("bob", sent["id"])
    assert deleted["reactions"] == {}
    assert p["bob"].messages("alice")[0]["reactions"] == {}
    pair = {**p["bob"].pair("alice"), "id": sent["id"]}
    p["bob"].refused("/react", 409, "message_deleted", **pair, emoji="👍")
    p["bob"].refused("/react", 409, "message_deleted", **pair, emoji="")


def test_a_blocked_person_cannot_react(server: Server) -> None:
    p = meet(server, "alice", "bob")
    sent = p["bob"].send("alice", "hello")
    p["bob"].ok("/block_friend", username="alice")
    p["alice"].refused("/react", 403, "blocked", **p["alice"].pair("bob"), id=sent["id"],
                       emoji="👍")  # fmt: skip
    assert p["bob"].messages("alice")[0]["reactions"] == {}


def test_open_mode_names_who_reacts(open_server: Server) -> None:
    url = open_server.url
    http.post(f"{url}/send_message/bob", data={"author": "alice", "message": "hi"})
    pair = {"user_one": "bob", "user_two": "alice", "id": 1, "emoji": "👍"}
    reply = http.post(f"{url}/react", data={**pair, "username": "bob"})
    assert reply.status_code == 200, reply.text
    assert reply.json()["message"]["reactions"] == {"👍": ["bob"]}
    assert http.post(f"{url}/react", data={**pair, "username": "carol"}).status_code == 403
    assert http.post(f"{url}/react", data=pair).status_code == 400


def test_a_reaction_counts_as_a_send(app_server: Callable[..., Server]) -> None:
    server = app_server(send_rate_limit="2 per minute")
    alice, _ = register(server.url, "alice"), register(server.url, "bob")
    http.post(
        f"{server.url}/send_message/bob",
        data={"author": "alice", "message": "one"},
        headers=bearer(alice),
    )
    statuses = [
        http.post(
            f"{server.url}/react",
            data={"user_one": "alice", "user_two": "bob", "id": 1, "emoji": emoji},
            headers=bearer(alice),
        ).status_code
        for emoji in ("👍", "❤️")
    ]
    assert statuses == [200, 429]


def test_a_page_reads_its_reactions_in_one_query(tmp_path: Path) -> None:
    conversation = Conversation(tmp_path / "pair.db")
    for n in range(30):
        conversation.add_message("alice", f"m{n}", 1764012345 + n)
    for n in range(1, 31, 3):
        conversation.react(n, "bob", "👍")
        conversation.react(n, "alice", "❤️")
    statements: list[str] = []

    def trace(conn: sqlite3.Connection) -> None:
        conn.set_trace_callback(statements.append)

    conversation._run(trace)
    page = conversation.page(limit=20)
    assert sum(1 for s in statements if "reaction" in s) == 1
    assert len(statements) == 4, statements  # the revision, the page, its reactions and files
    reactions = {message.id: message.reactions for message in page.messages}
    assert reactions[28] == {"❤️": ["alice"], "👍": ["bob"]} and reactions[29] is None
    conversation.close()


def test_export_shows_reactions(tmp_path: Path) -> None:
    conversation = Conversation(tmp_path / "pair.db")
    conversation.add_message("alice", "ship it", 1764012345)
    conversation.react(1, "bob", "👍")
    conversation.react(1, "alice", "👍")
    (message,) = conversation.get_history()
    assert '"reactions": {"👍": ["alice", "bob"]}' in jsonl_line(message)
    lines = list(markdown_lines("alice", "bob", [message]))
    assert lines[-1] == "  reactions: 👍 alice, bob"
    conversation.close()
