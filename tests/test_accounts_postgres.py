"""The accounts store on both engines: every behaviour here runs on the SQLite file and
on a real PostgreSQL (``tests/pg_server.py``), through the same public methods.

Two store objects on one database stand for two nodes (PostgreSQL) or two
processes (SQLite). Also here: the parameter translation (``backend/storage/sql.py``)
and what only PostgreSQL has (a server restart, ``backup_to``'s refusal).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from backend.core.errors import DisplayNameTaken, InvalidInvite, StorageUnavailable, UsernameTaken
from backend.storage.accounts import AccountStore, LastMessage, open_account_store
from backend.storage.door_keys import KeyRecord
from backend.storage.sql import translate
from tests.pg_server import PostgresServer, postgres_server, postgres_url  # noqa: F401

pytestmark = pytest.mark.live  # a real database server

Opener = Callable[[], AccountStore]


@pytest.fixture(params=["sqlite", "postgres"])
def engine(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def open_store(engine: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Opener]:
    """Opens another store on the test's one database (another node or process)."""
    url = request.getfixturevalue("postgres_url") if engine == "postgres" else ""
    stores: list[AccountStore] = []

    def opener() -> AccountStore:
        store = open_account_store(tmp_path, database_url=url)
        stores.append(store)
        return store

    yield opener
    for store in stores:
        store.close()


@pytest.fixture
def store(open_store: Opener, engine: str) -> AccountStore:
    made = open_store()
    assert type(made).__name__ == (
        "PostgresAccountStore" if engine == "postgres" else "AccountStore"
    )
    return made


def people(store: AccountStore, *names: str) -> None:
    for name in names:
        assert store.add_user(name, None, f"hash-{name}", 1000)


def say(store: AccountStore, author: str, to: str, msg_id: int, text: str = "hi") -> None:
    store.record_message(author, to, LastMessage(msg_id, author, text, 2000 + msg_id, None))


# -- users and tokens ----------------------------------------------------------------
def test_users_names_and_invites(store: AccountStore) -> None:
    assert store.add_user("alice", "Alice L.", "h1", 1000)
    assert store.add_user("alice", None, "other", 1001) is False
    user = store.user("alice")
    assert user is not None and (user.username, user.display_name, user.password_hash) == (
        "alice",
        "Alice L.",
        "h1",
    )
    assert store.user("nobody") is None
    with pytest.raises(DisplayNameTaken):
        store.add_user("bob", "ALICE", "h2", 1002)  # reads like another user's name
    with pytest.raises(UsernameTaken, match="reads like another user's name"):
        store.add_user("a1ice", None, "h2", 1002)  # 1 for l: the SQL skeleton on PostgreSQL
    assert store.add_user("dave", "Mal", "h4", 1002)
    with pytest.raises(UsernameTaken, match="reads like another user's name"):
        store.add_user("rnal", None, "h2", 1002)  # dave's display name reads so
    store.add_invite("code", 1000, 5000)
    assert store.add_user("bob", None, "h2", 1003, invite_hash="code")
    with pytest.raises(InvalidInvite):
        store.add_user("carol", None, "h3", 1004, invite_hash="code")  # used up
    assert store.user("carol") is None  # the failed registration left nothing
    store.set_password_hash("bob", "h2b")
    assert store.user("bob").password_hash == "h2b"


def test_tokens(store: AccountStore) -> None:
    people(store, "alice")
    store.add_token("t1", "alice", 100)
    store.add_token("t2", "alice", 101)
    store.add_token("t3", "alice", 102)
    token = store.token("t1")
    assert token is not None and (token.username, token.created_at, token.last_used) == (
        "alice",
        100,
        100,
    )
    store.touch_token("t1", 150)
    assert store.token("t1").last_used == 150
    store.delete_token("t1")
    assert store.token("t1") is None
    assert store.change_password("alice", "new", keep_token="t2") == 1
    assert store.token("t2") is not None and store.token("t3") is None
    assert store.change_password("alice", "newer", keep_token=None) == 1
    assert store.delete_tokens("alice") == 0


def test_concurrent_registrations_of_one_name_make_one_account(open_store: Opener) -> None:
    nodes = [open_store(), open_store()]
    results: list[bool] = []
    barrier = threading.Barrier(8)

    def register(i: int) -> None:
        barrier.wait()
        results.append(nodes[i % 2].add_user("zed", f"Zed {i}", f"h{i}", 1000 + i))

    threads = [threading.Thread(target=register, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False] * 7 + [True]


# -- the feed ----------------------------------------------------------------------------
def test_feed_order_unread_and_cursor(store: AccountStore) -> None:
    people(store, "alice", "bob", "carol")
    start = store.current_seq()
    say(store, "alice", "bob", 1, "one")
    say(store, "carol", "bob", 1, "two")
    say(store, "alice", "bob", 2, "three")
    seq, rows = store.contacts("bob")
    assert seq == start + 3 == store.current_seq()
    assert [(row.peer, row.last_id, row.unread) for row in rows] == [
        ("carol", 1, 1),
        ("alice", 2, 2),
    ]
    assert [row.seq for row in rows] == sorted(row.seq for row in rows)
    assert rows[0].request and rows[1].request  # strangers' conversations, not accepted
    seq_again, newer = store.contacts("bob", since=rows[0].seq)
    assert seq_again == seq and [row.peer for row in newer] == ["alice"]
    assert store.contacts("bob", since=seq) == (seq, [])
    mine = store.contacts("alice")[1]
    assert [(row.peer, row.unread, row.request) for row in mine] == [("bob", 0, False)]
    assert set(store.changed_pairs(start + 2)[1]) == {("alice", "bob"), ("bob", "alice")}


def test_feed_seqs_are_distinct_across_threads_and_nodes(open_store: Opener) -> None:
    nodes = [open_store(), open_store()]
    people(nodes[0], "hub", *(f"u{i}" for i in range(8)))
    seqs: list[list[int]] = [[] for _ in range(8)]
    barrier = threading.Barrier(8)

    def send(i: int) -> None:
        node, me, since = nodes[i % 2], f"u{i}", 0
        barrier.wait()
        for n in range(1, 51):
            say(node, me, "hub", n)
            _, rows = node.contacts(me, since=since)  # only this thread moves my row
            assert [row.peer for row in rows] == ["hub"]
            since = rows[0].seq
            seqs[i].append(since)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = [seq for mine in seqs for seq in mine]
    assert all(len(mine) == 50 and mine == sorted(set(mine)) for mine in seqs)
    assert sorted(every) == list(range(1, 401)) and nodes[1].current_seq() == 400
    hub = {row.peer: row.unread for row in nodes[1].contacts("hub")[1]}
    assert hub == {f"u{i}": 50 for i in range(8)}


def test_unread_adds_up_under_concurrent_writes(open_store: Opener) -> None:
    nodes = [open_store(), open_store()]
    people(nodes[0], "alice", "bob")

    def send(i: int) -> None:
        for n in range(25):
            say(nodes[i % 2], "alice", "bob", i * 100 + n)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    (row,) = nodes[0].contacts("bob")[1]
    assert row.unread == 150 and row.last_id == 524  # the newest id, whatever the order


def test_friend_list_blocks_hides_and_requests(store: AccountStore) -> None:
    people(store, "alice", "bob", "carol", "dave", "erin")
    store.set_flags("alice", "bob", added=1)
    say(store, "carol", "alice", 1, "hello from carol")
    say(store, "alice", "dave", 1, "to dave")
    store.set_flags("alice", "erin", added=1)
    store.set_flags("alice", "erin", blocked=1)
    listed, blocked = store.friend_list("alice")
    assert [(p.username, p.request) for p in listed] == [
        ("dave", False),
        ("carol", True),
        ("bob", False),
    ]
    assert blocked == ["erin"]
    carol = listed[1]
    assert carol.last_message is not None and carol.last_message.message == "hello from carol"
    assert carol.unread == 1 and carol.last_message.author == "carol"
    store.set_flags("alice", "dave", hidden=1)
    assert [p.username for p in store.friend_list("alice")[0]] == ["carol", "bob"]
    contact = store.contact("alice", "erin")
    assert contact is not None and contact.blocked and contact.added
    assert store.contact("alice", "nobody") is None


def test_revisions_repairs_and_forgetting(store: AccountStore) -> None:
    people(store, "alice", "bob")
    say(store, "alice", "bob", 1, "first")
    say(store, "alice", "bob", 2, "second")
    edited = LastMessage(2, "alice", "second, edited", 2002, None, rev=3, edited_at=2500)
    store.record_revision("alice", "bob", edited)
    (row,) = store.friend_list("bob")[0]
    assert row.rev == 3 and row.unread == 2 and row.last_message is not None
    assert (row.last_message.message, row.last_message.edited_at) == ("second, edited", 2500)
    gone = LastMessage(2, "alice", "", 2002, None, rev=4, deleted=True)
    store.record_revision("alice", "bob", gone, peer_unread=1)
    (row,) = store.friend_list("bob")[0]
    assert row.rev == 4 and row.unread == 1 and row.last_message.deleted
    store.repair_feed("alice", "bob", LastMessage(5, "alice", "five", 2005, "c5", rev=5), 7)
    (row,) = store.friend_list("bob")[0]
    assert (row.last_id, row.unread, row.last_message.client_id) == (5, 7, "c5")
    store.set_last_message("alice", "bob", LastMessage(5, "alice", "five again", 2005, "c5", 5))
    assert store.friend_list("alice")[0][0].last_message.message == "five again"
    store.forget_pair("alice", "bob")
    assert sorted(store.feed_rows()) == [("alice", "bob", 0, 0), ("bob", "alice", 0, 0)]


# -- receipts, typing, privacy -------------------------------------------------------------
def test_read_markers_and_receipts(store: AccountStore) -> None:
    people(store, "alice", "bob")
    say(store, "alice", "bob", 1)
    say(store, "alice", "bob", 2)
    before = store.current_seq()
    assert store.set_read_marker("bob", "alice", 2, 0) == (True, True)
    assert store.set_read_marker("bob", "alice", 2, 0) == (False, False)  # did not move
    (row,) = store.contacts("alice", since=before)[1]
    assert row.peer_read_up_to == 2
    bob = store.contact("bob", "alice")
    assert bob is not None and bob.read_marker == 2 and bob.unread == 0
    privacy, moved = store.set_privacy("bob", read_receipts=False, typing=None)
    assert (privacy.read_receipts, privacy.typing) == (False, True)
    assert moved == ["alice", "bob"]
    assert store.privacy("bob") == privacy
    assert store.set_privacy("bob", read_receipts=False, typing=None)[1] == []
    (row,) = store.contacts("alice")[1]
    assert row.peer_read_up_to is None  # hidden once either side turns receipts off
    assert store.set_read_marker("bob", "alice", 1, 0) == (True, False)  # moved, alice not told


def test_typing(store: AccountStore) -> None:
    people(store, "alice", "bob", "carol")
    assert store.signal_typing("carol", "alice", 0, 5000, 1000) is False  # no conversation
    store.set_flags("alice", "bob", added=1)
    assert store.signal_typing("bob", "alice", 0, 5000, 1000) is True
    assert store.signal_typing("bob", "alice", 100, 5500, 1000) is False  # within the gap
    (row,) = store.contacts("alice", now_ms=4000)[1]
    assert row.typing is True
    assert store.contacts("alice", now_ms=6000)[1][0].typing is False
    say(store, "bob", "alice", 1)  # writing ends the signal
    assert store.contacts("alice", now_ms=4000)[1][0].typing is False
    store.set_privacy("alice", read_receipts=None, typing=False)
    assert store.signal_typing("bob", "alice", 9000, 20000, 1000) is False


# -- deletion --------------------------------------------------------------------------------
def test_delete_user_leaves_a_tombstone(store: AccountStore) -> None:
    people(store, "alice", "bob", "carol")
    say(store, "alice", "bob", 1)
    say(store, "carol", "alice", 1)
    store.add_token("ta", "alice", 10)
    epoch = store.account_epoch()
    assert sorted(store.delete_user("alice", 500)) == ["bob", "carol"]
    user = store.user("alice")
    assert user is not None and user.deleted and user.password_hash == ""
    assert store.token("ta") is None and store.account_epoch() == epoch + 1
    assert store.add_user("alice", None, "again", 600) is False
    assert store.contacts("alice")[1] == []
    (row,) = store.contacts("bob")[1]
    assert row.peer == "alice" and row.deleted


# -- the SSH door's keys -----------------------------------------------------------------------
def test_door_keys(store: AccountStore) -> None:
    people(store, "bob")
    key = KeyRecord("SHA256:one", "ssh-ed25519 AAAA1", "laptop")
    store.add_ticket("ticket1", key, now=100, expires_at=200)
    assert store.ticket("ticket1", 150) == KeyRecord(
        "SHA256:one", "ssh-ed25519 AAAA1", "laptop", 150
    )
    assert store.ticket("ticket1", 250) is None  # expired
    with pytest.raises(UsernameTaken):
        store.claim("ticket1", "bob", None, 150)
    claimed = store.claim("ticket1", "kim", None, 150)
    assert claimed is not None and store.key_owner("SHA256:one") == "kim"
    assert store.claim("ticket1", "lee", None, 150) is None  # used up
    second = KeyRecord("SHA256:two", "ssh-ed25519 AAAA2", "desk")
    store.add_ticket("ticket2", second, now=160, expires_at=300)
    store.add_link_code("code", "kim", expires_at=300)
    assert store.link("ticket2", "wrong", 170, max_tries=3)[0] == "bad_code"
    result, owner, linked = store.link("ticket2", "code", 170, max_tries=3)
    assert (result, owner, linked and linked.fingerprint) == ("linked", "kim", "SHA256:two")
    assert [k.fingerprint for k in store.keys("kim")] == ["SHA256:one", "SHA256:two"]
    store.add_token("via", "kim", 180, via_key="SHA256:two")
    assert store.remove_key("kim", "SHA256:nope") == "unknown"
    assert store.remove_key("kim", "SHA256:two") == "removed"
    assert store.token("via") is None
    assert store.remove_key("kim", "SHA256:one") == "last"  # no password, no other key


# -- two nodes ---------------------------------------------------------------------------------
def test_data_version_moves_with_another_nodes_writes(open_store: Opener) -> None:
    watcher, writer = open_store(), open_store()
    people(writer, "alice", "bob")
    seen = watcher.data_version()
    assert watcher.data_version(wait=False) == seen
    say(writer, "alice", "bob", 1)
    after_send = watcher.data_version()
    assert after_send != seen
    assert watcher.changed_pairs(watcher.current_seq() - 1)[1]  # and the watcher sees the rows
    writer.delete_user("bob", 900)
    assert watcher.data_version() != after_send
    assert watcher.account_epoch() == 1


# -- PostgreSQL only -------------------------------------------------------------------------
def test_a_postgres_restart_costs_a_call_not_the_node(
    postgres_server: PostgresServer,  # noqa: F811
    postgres_url: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    store = open_account_store(tmp_path, database_url=postgres_url)
    try:
        people(store, "alice")
        postgres_server.stop("fast")
        with pytest.raises(StorageUnavailable, match="cannot be reached"):
            store.user("alice")
        postgres_server.start()
        user = store.user("alice")  # the dropped connections were replaced
        assert user is not None and user.username == "alice"
        assert store.add_user("bob", None, "h", 1)
        postgres_server.stop("fast")  # a restart between two calls: not even one fails
        postgres_server.start()
        say(store, "alice", "bob", 1)
        assert store.contacts("bob")[1][0].peer == "alice"
        with pytest.raises(StorageUnavailable, match="pg_dump"):
            store.backup_to(tmp_path / "copy")
    finally:
        store.close()


def test_an_unreachable_database_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(StorageUnavailable, match="cannot be reached"):
        open_account_store(tmp_path, database_url="postgresql://postgres@127.0.0.1:1/none")


@pytest.mark.parametrize(
    ("sqlite", "psycopg"),
    [
        ("SELECT 1 FROM t WHERE a = ? AND b = ?", "SELECT 1 FROM t WHERE a = %s AND b = %s"),
        ("WHERE a = :name AND b=:b_2", "WHERE a = %(name)s AND b=%(b_2)s"),
        ("SELECT '?', ':x', 'it''s ?' , ?", "SELECT '?', ':x', 'it''s ?' , %s"),
        ("SELECT x::text, :v::int", "SELECT x::text, %(v)s::int"),
        ("SELECT 5 % 2, '100%' WHERE a = ?", "SELECT 5 %% 2, '100%%' WHERE a = %s"),
        ('SELECT "odd?name" FROM t -- why? :no\nWHERE a = ?', None),
        ("SELECT 1", "SELECT 1"),
    ],
)
def test_translate(sqlite: str, psycopg: str | None) -> None:
    expected = psycopg or 'SELECT "odd?name" FROM t -- why? :no\nWHERE a = %s'
    assert translate(sqlite) == expected


def test_translate_refuses_mixed_styles_and_open_quotes() -> None:
    with pytest.raises(ValueError, match="mixes"):
        translate("SELECT ? , :a")
    with pytest.raises(ValueError, match="unterminated"):
        translate("SELECT 'open")
