"""Unit: ``build_services`` gives a working backend with no Flask, over real SQLite files.

The services take typed values (``Username``, ``Pair``) and raise domain
errors; the HTTP tiers test the same rules through the wire.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from backend.core.errors import Blocked, ClientIdConflict, SameUser, UnknownUser
from backend.core.usernames import Pair, Username
from backend.services.wiring import Services, build_services
from tests.support import REPO, settings_for

ALICE, BOB, CAROL = Username("alice"), Username("bob"), Username("carol")


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    with build_services(settings_for(tmp_path / "data", watch_interval=0)) as built:
        for name in (ALICE, BOB):
            built.accounts.register(name, "correct horse")
        yield built


def test_importing_storage_and_services_loads_no_flask() -> None:
    code = (
        "import sys, backend.services.wiring, backend.storage.conversations, backend.server.demo; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('flask', 'werkzeug')))"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert (done.returncode, done.stdout.strip()) == (0, "[]"), done.stderr


def test_one_box_loads_no_cluster_client() -> None:
    """psycopg and redis (~0.4 s of imports) are loaded only in multi-node mode."""
    code = (
        "import sys, backend.server.cli, backend.server.app; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('psycopg', 'redis')))"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert (done.returncode, done.stdout.strip()) == (0, "[]"), done.stderr


def test_send_history_and_the_feed_without_http(services: Services) -> None:
    chat = services.chat
    first = chat.send(ALICE, BOB, "hello", client_id="k1")
    again = chat.send(ALICE, BOB, "hello", client_id="k1")
    assert (again.id, again.duplicate) == (first.id, True)
    page = chat.history(Pair.of(BOB, ALICE))
    assert [(m.author, m.message, m.client_id) for m in page.messages] == [("alice", "hello", "k1")]
    feed = chat.updates(BOB, since=None)
    assert [(c.peer, c.unread) for c in feed.changed] == [("alice", 1)]
    assert chat.mark_read(BOB, ALICE, first.id) == 0
    # alice is not bob's friend: her conversation waits in his requests until he accepts
    assert [f.username for f in chat.friends(BOB).requests] == ["alice"]
    chat.set_friend(BOB, ALICE, added=1, hidden=0)
    assert [f.username for f in chat.friends(BOB).listed] == ["alice"]
    assert chat.friends(BOB).requests == []
    assert (services.settings.data_dir / "alice_bob.db").is_file()


def test_domain_errors_carry_no_http(services: Services) -> None:
    chat = services.chat
    with pytest.raises(UnknownUser):
        chat.send(ALICE, CAROL, "anyone there?")
    chat.send(ALICE, CAROL, "open mode names anyone", require_accounts=False)
    with pytest.raises(SameUser):
        Pair.of(ALICE, ALICE)
    chat.set_friend(BOB, ALICE, blocked=1)
    with pytest.raises(Blocked):
        chat.send(ALICE, BOB, "let me in")
    with pytest.raises(ClientIdConflict) as caught:
        chat.send(ALICE, CAROL, "other text", "k2", require_accounts=False)
        chat.send(ALICE, CAROL, "changed text", "k2", require_accounts=False)
    assert not hasattr(caught.value, "status") and not hasattr(caught.value, "code")


def test_an_accounts_file_from_version_1_is_upgraded_and_friends_read_the_file_once(
    tmp_path: Path,
) -> None:
    """Version 2 keeps each pair's newest message in the feed rows; files from before
    have none, so /friends reads the pair file once and remembers it."""
    import sqlite3

    from backend.storage import accounts as storage

    folder = tmp_path / "data"
    folder.mkdir()
    conn = sqlite3.connect(folder / storage.ACCOUNTS_FILE, isolation_level=None)
    conn.execute("BEGIN")
    storage.MIGRATIONS[0](conn)  # only version 1, as the previous release left it
    conn.execute("PRAGMA user_version = 1")
    conn.execute("COMMIT")
    for name in ("alice", "bob"):
        conn.execute(
            "INSERT INTO users (username, display_name, password_hash, created_at) "
            "VALUES (?, ?, 'x', 0)",
            (name, name.title()),
        )
    conn.execute(
        "INSERT INTO contacts (owner, peer, last_id, last_activity, unread, seq) "
        "VALUES ('alice', 'bob', 1, 1700000000, 1, 1), ('bob', 'alice', 1, 1700000000, 0, 1)"
    )
    conn.close()
    with build_services(settings_for(folder, watch_interval=0)) as built:
        pair = built.conversations.get("alice", "bob", create=True)
        assert pair is not None
        pair.add_message("bob", "from before", 1700000000)
        listed = built.chat.friends(ALICE).listed
        assert [(f.username, f.display_name, f.unread) for f in listed] == [("bob", "Bob", 1)]
        assert listed[0].last_message is not None
        assert listed[0].last_message.message == "from before"
        # remembered: the feed rows now carry it, for both sides
        (row,) = built.account_store.friend_list(BOB)[0]
        assert row.last_message is not None and row.last_message.message == "from before"
        assert built.account_store.account_epoch() == 0
