"""The friend list's preview (``last_message``) is never stale, and its upgrade is cheap.

A pair's file and its feed rows are written in two steps, so two changes of a pair can
reach the feed in the opposite order: the tests call the store's methods in that racing
order, on a real accounts file and on a real PostgreSQL, and the later change must win.
After the upgrade to accounts version 8 every old row is incomplete: ``GET /friends``
completes a bounded number of them per call from their pair files, and a row that its
file cannot make better is taken as it is, once.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from backend.core.usernames import Username
from backend.services.chat import FILLS_PER_LIST
from backend.services.wiring import build_services
from backend.storage.accounts import AccountStore, LastMessage, open_account_store
from backend.storage.accounts_schema import ACCOUNTS_FILE
from backend.storage.attachments import Attachment
from backend.storage.feed import Listed
from tests.pg_server import postgres_server, postgres_url  # noqa: F401
from tests.support import LiveServer, bearer, http, settings_for

Start = Callable[..., LiveServer]
NEW_COLUMNS = ("last_file_name", "last_file_size", "last_file_type", "last_reactions")
HI = LastMessage(1, "alice", "hi", 1000, None, 1)


@dataclass
class Feed:
    """alice and bob's account store, and a way to run SQL on its database."""

    store: AccountStore
    run_sql: Callable[[str], None]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.live)])
def feed(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Feed]:
    """alice and bob's account store, one message from alice to bob in their feed."""
    url = request.getfixturevalue("postgres_url") if request.param == "postgres" else None

    def run_sql(statement: str) -> None:
        if url is None:
            with sqlite3.connect(tmp_path / ACCOUNTS_FILE) as conn:
                conn.execute(statement)
        else:
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(statement)

    accounts = open_account_store(tmp_path, database_url=url)
    for name in ("alice", "bob"):
        assert accounts.add_user(name, None, f"hash-{name}", 1000)
    accounts.record_message("alice", "bob", HI)
    try:
        yield Feed(accounts, run_sql)
    finally:
        accounts.close()


def both_sides(store: AccountStore) -> list[Listed]:
    """alice's row for bob and bob's row for alice."""
    return [store.friend_list(owner)[0][0] for owner in ("alice", "bob")]


def test_of_two_reactions_landing_out_of_order_the_later_one_is_kept(
    feed: Feed,
) -> None:
    store = feed.store
    newer = LastMessage(1, "alice", "hi", 1000, None, 3, reactions={"👍": ["alice"], "❤": ["bob"]})
    older = LastMessage(1, "alice", "hi", 1000, None, 2, reactions={"👍": ["alice"]})
    store.record_revision("bob", "alice", newer)
    store.record_revision("alice", "bob", older)  # committed first, landed second
    for row in both_sides(store):
        assert row.last_message is not None and row.rev == 3
        assert (row.last_message.rev, row.last_message.reactions) == (3, newer.reactions)


def test_an_edit_landing_after_a_later_deletion_does_not_bring_the_text_back(
    feed: Feed,
) -> None:
    store = feed.store
    file = Attachment("report.pdf", 4, "application/pdf")
    store.record_message(
        "alice", "bob", LastMessage(2, "alice", "", 1001, None, 2, attachment=file)
    )
    store.record_revision("alice", "bob", LastMessage(2, "alice", "", 1001, None, 4, deleted=True))
    store.record_revision(
        "alice", "bob", LastMessage(2, "alice", "q3", 1001, None, 3, 1002, attachment=file)
    )
    for row in both_sides(store):
        assert row.last_message is not None
        assert (row.last_message.deleted, row.last_message.message) == (True, "")
        assert row.last_message.attachment is None


def test_a_reaction_whose_feed_write_lands_before_its_message_s_keeps_the_reaction(
    feed: Feed,
) -> None:
    """alice sends message 2 (pair revision 2), bob reacts to it at once (revision 3): the
    reaction's feed write lands first, then the send's."""
    store = feed.store
    reacted = LastMessage(2, "alice", "look", 1001, None, 3, reactions={"👍": ["bob"]})
    store.record_revision("bob", "alice", reacted)
    store.record_message("alice", "bob", LastMessage(2, "alice", "look", 1001, None, 2))
    alice_sees, bob_sees = both_sides(store)
    for row in (alice_sees, bob_sees):
        assert row.last_message is not None and row.last_complete
        assert (row.last_id, row.rev, row.last_message.id) == (2, 3, 2)
        assert (row.last_message.message, row.last_message.date_sent) == ("look", 1001)
        assert (row.last_message.rev, row.last_message.reactions) == (3, {"👍": ["bob"]})
    assert (alice_sees.unread, bob_sees.unread) == (0, 2), "the send still counts as unread"


def test_a_preview_read_from_the_file_before_a_change_landed_does_not_undo_it(feed: Feed) -> None:
    """``GET /friends`` read an incomplete row's message from the pair's file (revision 1);
    a reaction lands before it writes what it read."""
    mark_incomplete(feed)
    store = feed.store
    reacted = LastMessage(1, "alice", "hi", 1000, None, 2, reactions={"👍": ["bob"]})
    store.record_revision("bob", "alice", reacted)
    store.set_last_message("alice", "bob", HI)
    for row in both_sides(store):
        assert row.last_message is not None and row.last_complete
        assert row.last_message.reactions == {"👍": ["bob"]}


def test_a_file_ahead_of_its_feed_fills_the_row_with_its_newest_message(feed: Feed) -> None:
    """The feed missed a send (its write failed after the message was stored)."""
    mark_incomplete(feed)
    store = feed.store
    store.set_last_message("alice", "bob", LastMessage(2, "alice", "missed", 1005, None, 2))
    for row in both_sides(store):
        assert row.last_message is not None and row.last_complete
        assert (row.last_id, row.last_message.message, row.last_message.date_sent) == (
            2,
            "missed",
            1005,
        )
    store.record_message("alice", "bob", LastMessage(3, "alice", "next", 1006, None, 3))
    assert [row.last_message and row.last_message.message for row in both_sides(store)] == [
        "next",
        "next",
    ]


def mark_incomplete(feed: Feed) -> None:
    """The rows as the upgrade to version 8 leaves them on SQLite (PostgreSQL's upgrade
    takes them as complete, but the statements that fill them are the same)."""
    feed.run_sql("UPDATE contacts SET last_complete = 0")
    assert not any(row.last_complete for row in both_sides(feed.store))


def version_7_friends(folder: Path) -> int:
    """A data folder whose accounts file is back at version 7: alice wrote to many peers
    (each reacted to her message), and a few pairs whose files cannot complete their rows:
    ``gone`` (no file), ``behind`` (the feed names a message the file lacks), ``broken``
    (not a database) — and ``ahead`` (the feed missed a send) and ``dated`` (a date that
    is text, as the seed's table kept it). The number of her rows."""
    peers = [f"peer{n:02d}" for n in range(2 * FILLS_PER_LIST + 5)]
    odd = ["gone", "behind", "broken", "ahead", "dated"]  # the most recent: the first call's
    with build_services(settings_for(folder)) as services:
        services.accounts.register(Username("alice"), "correct horse")
        store = services.account_store
        for n, peer in enumerate([*peers, *odd]):
            store.add_user(peer, None, "x", 0)
            conversation = services.conversations.get("alice", peer, create=True)
            assert conversation is not None
            date = 1_700_000_000_000 + n
            sent = conversation.add_message("alice", f"hello {peer}", date)
            store.record_message(
                "alice", peer, LastMessage(sent.id, "alice", f"hello {peer}", date, None, sent.rev)
            )
            if peer in peers:
                reacted = conversation.react(sent.id, peer, "👍").message
                store.record_revision(peer, "alice", LastMessage.of(reacted))
            if peer == "ahead":  # stored, its feed write lost
                conversation.add_message(peer, "you there?", date + 1)
        store.record_message("alice", "behind", LastMessage(7, "alice", "later", date, None, 7))
        files = {peer: services.conversations.path_for("alice", peer) for peer in odd}
    files["gone"].unlink()
    files["broken"].write_bytes(b"not a database, " * 512)
    with sqlite3.connect(files["dated"]) as conn:  # a date as the seed's table kept it
        conn.execute("UPDATE conversation SET date_sent = '2023-11-14 22:13:20'")
    with sqlite3.connect(folder / ACCOUNTS_FILE) as conn:  # back to what version 7 kept
        for column in (*NEW_COLUMNS, "last_complete"):
            conn.execute(f"ALTER TABLE contacts DROP COLUMN {column}")
        conn.execute("PRAGMA user_version = 7")
    return len(peers) + len(odd)


def incomplete_rows(folder: Path) -> int:
    with sqlite3.connect(folder / ACCOUNTS_FILE) as conn:
        (count,) = conn.execute(
            "SELECT count(*) FROM contacts WHERE owner = 'alice' AND last_complete = 0"
        ).fetchone()
    return int(count)


def test_after_the_upgrade_each_friend_list_completes_a_bounded_number_of_rows(
    live_server: Start, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "data"
    total = version_7_friends(folder)
    server = live_server(data_dir=folder)
    assert server.services is not None
    reply = http.post(
        f"{server.url}/login", data={"username": "alice", "password": "correct horse"}
    )
    token = reply.json()["token"]
    assert incomplete_rows(folder) == total, "the upgrade marks every old row incomplete"
    left = total
    calls = 0
    with caplog.at_level(logging.WARNING, logger="backend.services.chat"):
        while left:
            friends = http.get(f"{server.url}/friends", headers=bearer(token)).json()["friends"]
            calls += 1
            assert len(friends) == total
            assert server.services.conversations.open_count() <= calls * FILLS_PER_LIST
            now = incomplete_rows(folder)
            assert now == max(left - FILLS_PER_LIST, 0), "at most FILLS_PER_LIST rows a call"
            shown = {f["username"]: f["last_message"] for f in friends}
            assert all(shown.values()), "a row not completed yet shows its text preview"
            with_reactions = [name for name, last in shown.items() if last["reactions"]]
            assert len(with_reactions) == total - now - 5, "the odd rows: the first call's"
            assert shown["ahead"]["message"] == "you there?"
            assert shown["behind"]["message"] == "later", "the row as it is"
            assert shown["dated"]["message"] == "hello dated"
            left = now
        opened = server.services.conversations.open_count()
        for _ in range(2):  # nothing left to read: no pair file opened again
            friends = http.get(f"{server.url}/friends", headers=bearer(token)).json()["friends"]
        assert server.services.conversations.open_count() == opened
    assert calls == -(-total // FILLS_PER_LIST)
    assert all(
        f["last_message"]["reactions"] == {"👍": [f["username"]]}
        for f in friends
        if f["username"].startswith("peer")
    ), "every row completed in the end"
    broken = [r for r in caplog.records if "broken" in r.getMessage()]
    assert len(broken) == 1, "an unreadable file is tried once"


def test_a_row_whose_file_is_busy_is_completed_by_a_later_list(
    live_server: Start, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: any StorageUnavailable took the row as it was for good, a busy file too, so
    a lock held for a moment lost the row its file's reaction until the pair's next
    change. A busy file is trouble that passes: the row waits for a later list."""
    folder = tmp_path / "data"
    with build_services(settings_for(folder)) as services:
        services.accounts.register(Username("alice"), "correct horse")
        store = services.account_store
        store.add_user("bob", None, "x", 0)
        conversation = services.conversations.get("alice", "bob", create=True)
        assert conversation is not None
        sent = conversation.add_message("alice", "hello bob", 1_700_000_000_000)
        store.record_message(
            "alice", "bob", LastMessage(sent.id, "alice", "hello bob", sent.date_sent, None, 1)
        )
        conversation.react(sent.id, "bob", "👍")  # in the file only: the row must read it
        pair = services.conversations.path_for("alice", "bob")
    with sqlite3.connect(folder / ACCOUNTS_FILE) as conn:
        conn.execute("UPDATE contacts SET last_complete = 0")
    assert incomplete_rows(folder) == 1
    monkeypatch.setattr("backend.storage.database.BUSY_TIMEOUT_MS", 200)  # wait less on it
    server = live_server(data_dir=folder)
    token = http.post(
        f"{server.url}/login", data={"username": "alice", "password": "correct horse"}
    ).json()["token"]

    holder = sqlite3.connect(pair, isolation_level=None)
    try:
        holder.execute("PRAGMA locking_mode = EXCLUSIVE")  # readers are kept out too
        holder.execute("BEGIN EXCLUSIVE")
        busy = http.get(f"{server.url}/friends", headers=bearer(token))
        assert busy.status_code == 200, busy.text
        (row,) = busy.json()["friends"]
        assert row["last_message"]["message"] == "hello bob", "the row as it is, meanwhile"
        assert not row["last_message"]["reactions"]
        assert incomplete_rows(folder) == 1, "the busy file's row waits for a later list"
    finally:
        holder.close()

    later = http.get(f"{server.url}/friends", headers=bearer(token)).json()["friends"]
    assert later[0]["last_message"]["reactions"] == {"👍": ["bob"]}
    assert incomplete_rows(folder) == 0
