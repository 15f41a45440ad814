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

from backend.errors import Blocked, ClientIdConflict, SameUser, UnknownUser
from backend.services import Services, build_services
from backend.usernames import Pair, Username
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
        "import sys, backend.services, backend.storage.conversations, backend.demo; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('flask', 'werkzeug')))"
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
    assert [f.username for f in chat.friends(BOB).listed] == ["alice"]
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
