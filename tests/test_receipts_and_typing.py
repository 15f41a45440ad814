"""Read receipts, typing signals and the privacy settings that govern them."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.people import Person, meet
from tests.support import Server, bearer, http

pytestmark = pytest.mark.both_tiers  # in-process (fast tier) and live


def test_peer_read_up_to_is_how_far_the_other_has_read(server: Server) -> None:
    p = meet(server, "alice", "bob")
    ids = [p["alice"].send("bob", f"m{n}")["id"] for n in range(3)]
    assert p["alice"].friend("bob")["peer_read_up_to"] == 0
    cursor = p["alice"].cursor()
    p["bob"].ok("/mark_read", username="alice", last_read_id=ids[1])
    change = p["alice"].changes(cursor)["bob"]
    assert change["peer_read_up_to"] == ids[1], "bob's reading reaches alice's feed"
    assert p["alice"].friend("bob")["peer_read_up_to"] == ids[1]
    assert p["alice"].friend("bob")["unread"] == 0, "alice's own unread is untouched"
    # reading again at the same place moves nothing in alice's feed
    cursor = p["alice"].cursor()
    p["bob"].ok("/mark_read", username="alice", last_read_id=ids[1])
    assert "bob" not in p["alice"].changes(cursor)


def test_receipts_off_means_none_either_way(server: Server) -> None:
    p = meet(server, "alice", "bob")
    first = p["alice"].send("bob", "hi bob")["id"]
    p["bob"].send("alice", "hi alice")
    p["bob"].ok("/mark_read", username="alice", last_read_id=first)
    assert p["alice"].friend("bob")["peer_read_up_to"] == first
    cursor = p["alice"].cursor()
    assert p["bob"].settings(read_receipts="false") == {"read_receipts": False, "typing": True}
    # alice's feed hears of it at once, and shows no receipt of bob's any more
    change = p["alice"].changes(cursor)["bob"]
    assert "peer_read_up_to" not in change
    assert "peer_read_up_to" not in p["alice"].friend("bob")
    p["bob"].ok("/mark_read", username="alice", last_read_id=first + 1)
    assert "peer_read_up_to" not in p["alice"].friend("bob")
    # symmetric: bob, who hides his, sees nobody's
    p["alice"].ok("/mark_read", username="bob", last_read_id=first + 1)
    assert "peer_read_up_to" not in p["bob"].friend("alice")
    assert all("peer_read_up_to" not in c for c in p["bob"].feed()["changed"])
    # back on: both see where the other is now
    p["bob"].settings(read_receipts="true")
    assert p["alice"].friend("bob")["peer_read_up_to"] == first + 1
    assert p["bob"].friend("alice")["peer_read_up_to"] == first + 1


def test_settings_read_and_change_any_subset(server: Server) -> None:
    alice = Person(server, "alice")
    assert alice.settings() == {"read_receipts": True, "typing": True}, "both on by default"
    assert alice.settings(typing="false") == {"read_receipts": True, "typing": False}
    assert alice.settings(read_receipts="FALSE") == {"read_receipts": False, "typing": False}
    reply = http.post(
        f"{server.url}/settings",
        json={"typing": True},
        headers={"Authorization": f"Bearer {alice.token}"},
    )
    assert reply.json()["settings"] == {"read_receipts": False, "typing": True}
    for bad in ("yes", "1", "on", "truth"):
        alice.refused("/settings", 400, "invalid_field", typing=bad)
    reply = http.post(
        f"{server.url}/settings",
        json={"read_receipts": 1},
        headers={"Authorization": f"Bearer {alice.token}"},
    )
    assert reply.status_code == 400 and reply.json()["error"] == "invalid_field"
    assert alice.settings() == {"read_receipts": False, "typing": True}, "refusals changed nothing"


def wait_until(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def file_state(path: Path) -> tuple[bytes, bytes]:
    """A pair file's bytes and its WAL's (what a typing signal must never touch)."""
    wal = Path(f"{path}-wal")
    return path.read_bytes(), wal.read_bytes() if wal.exists() else b""


def test_typing_shows_expires_and_is_never_stored(app_server: Callable[..., Server]) -> None:
    server = app_server(typing_seconds=2)
    p = meet(server, "alice", "bob")
    p["alice"].send("bob", "hi")
    p["bob"].send("alice", "hello")
    pair_file = server.data_dir / "alice_bob.db"
    before = file_state(pair_file)
    cursor = p["alice"].cursor()
    p["bob"].ok("/typing", username="alice")
    assert p["alice"].changes(cursor)["bob"]["typing"] is True
    assert p["alice"].friend("bob")["typing"] is True
    assert p["bob"].friend("alice")["typing"] is False, "not shown to the typer"
    assert wait_until(lambda: p["alice"].friend("bob")["typing"] is False, timeout=30)
    assert all(not c["typing"] for c in p["alice"].feed()["changed"])
    assert file_state(pair_file) == before, "the pair's file never saw it"
    assert [m["message"] for m in p["alice"].messages("bob")] == ["hi", "hello"]
    conn = sqlite3.connect(pair_file)
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    conn.close()
    assert not any("typing" in table for table in tables)


def test_a_message_ends_typing_and_signals_are_spaced(app_server: Callable[..., Server]) -> None:
    server = app_server(typing_seconds=60)  # a signal lasts; 30 s between two of a pair
    p = meet(server, "alice", "bob")
    p["alice"].send("bob", "hi")
    p["bob"].ok("/typing", username="alice")
    cursor = p["alice"].cursor()
    p["bob"].ok("/typing", username="alice")  # too soon after the last: no new wake-up
    assert "bob" not in p["alice"].changes(cursor)
    p["bob"].send("alice", "done typing")
    change = p["alice"].changes(cursor)["bob"]
    assert change["typing"] is False and change["unread"] == 1


def test_typing_off_on_either_side_means_none(server: Server) -> None:
    p = meet(server, "alice", "bob", "carol")
    p["alice"].send("bob", "hi")
    p["alice"].send("carol", "hi")
    p["alice"].settings(typing="false")
    p["alice"].ok("/typing", username="bob")  # the typer turned it off: dropped
    assert p["bob"].friend("alice")["typing"] is False
    p["alice"].settings(typing="true")
    p["carol"].settings(typing="false")
    p["alice"].ok("/typing", username="carol")  # the recipient turned it off: dropped
    assert p["carol"].friend("alice")["typing"] is False
    p["alice"].ok("/typing", username="bob")
    assert p["bob"].friend("alice")["typing"] is True


def test_typing_reaches_only_accepted_conversations(server: Server) -> None:
    p = meet(server, "alice", "bob")
    mallory = Person(server, "mallory")
    mallory.ok("/typing", username="alice")  # no conversation at all
    mallory.send("alice", "hello stranger")
    cursor = p["alice"].cursor()
    mallory.ok("/typing", username="alice")  # a request alice never accepted
    assert p["alice"].changes(cursor) == {}
    assert alice_sees_typing(p["alice"], "mallory") is False
    p["alice"].add("mallory")  # accepted: now it shows
    mallory.ok("/typing", username="alice")
    assert alice_sees_typing(p["alice"], "mallory") is True
    p["bob"].ok("/block_friend", username="alice")
    cursor = p["bob"].cursor()
    p["alice"].ok("/typing", username="bob")  # bob blocked alice: dropped, no wake-up
    assert p["bob"].changes(cursor) == {}
    p["bob"].ok("/unblock_friend", username="alice")
    p["alice"].ok("/typing", username="bob")
    assert p["bob"].friend("alice")["typing"] is True
    p["alice"].refused("/typing", 404, "unknown_user", username="nobody")
    p["alice"].refused("/typing", 400, "same_user", username="alice")
    p["alice"].refused("/typing", 400, "missing_field")


def alice_sees_typing(alice: Person, other: str) -> bool:
    typing: bool = alice.friend(other)["typing"]
    return typing


def test_a_read_marker_sent_again_wakes_nobody(server: Server, users: dict[str, str]) -> None:
    """A bot that marks read after every wake-up must not wake itself (issue 24: 2,900
    /updates in 13 s); a marker that moves still reaches both feeds."""
    alice, bob = users["alice"], users["bob"]
    http.post(
        f"{server.url}/send_message/bob",
        data={"author": "alice", "message": "hi"},
        headers=bearer(alice),
    )
    read = {"username": "alice", "last_read_id": 1}
    assert http.post(f"{server.url}/mark_read", data=read, headers=bearer(bob)).status_code == 200
    feeds = {
        name: http.get(f"{server.url}/updates", headers=bearer(token)).json()
        for name, token in (("alice", alice), ("bob", bob))
    }
    assert [c["read_up_to"] for c in feeds["bob"]["changed"]] == [1], "my own marker"
    cursors = {name: feed["cursor"] for name, feed in feeds.items()}
    assert http.post(f"{server.url}/mark_read", data=read, headers=bearer(bob)).status_code == 200
    for name, token in (("alice", alice), ("bob", bob)):
        again = http.get(
            f"{server.url}/updates", params={"since": cursors[name]}, headers=bearer(token)
        )
        assert again.json()["changed"] == [], f"{name}'s feed moved for a marker that did not"


def test_a_settings_write_that_changes_nothing_wakes_nobody(
    server: Server, users: dict[str, str]
) -> None:
    """Issue 24: a settings write that changes nothing moves no feed (turning receipts off
    does: both sides of each conversation hear of it)."""
    alice, bob = users["alice"], users["bob"]
    http.post(
        f"{server.url}/send_message/bob",
        data={"author": "alice", "message": "hi"},
        headers=bearer(alice),
    )
    cursors = {
        name: http.get(f"{server.url}/updates", headers=bearer(token)).json()["cursor"]
        for name, token in (("alice", alice), ("bob", bob))
    }

    def moved() -> dict[str, list[object]]:
        return {
            name: http.get(
                f"{server.url}/updates", params={"since": cursors[name]}, headers=bearer(token)
            ).json()["changed"]
            for name, token in (("alice", alice), ("bob", bob))
        }

    same = {"read_receipts": "true", "typing": "true"}  # the defaults
    assert http.post(f"{server.url}/settings", data=same, headers=bearer(bob)).status_code == 200
    assert moved() == {"alice": [], "bob": []}
    off = {"read_receipts": "false"}
    assert http.post(f"{server.url}/settings", data=off, headers=bearer(bob)).status_code == 200
    assert all(moved().values()), "a real change reaches both feeds"
