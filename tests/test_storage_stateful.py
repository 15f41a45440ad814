"""The storage layer against a model: a hypothesis state machine over real SQLite files.

``ConversationStore`` and ``Conversation`` are driven with random sequences of
sends (with and without ``client_id``), pages in every direction, closes,
evictions (``max_open=1`` over two pairs), a fresh store on the same folder,
and ``forget``; after every step they must agree with a list in memory.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
from dataclasses import dataclass
from pathlib import Path

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from backend.errors import Conflict
from backend.storage.conversation import Conversation, Message
from backend.storage.conversations import ConversationStore

SOAK = os.environ.get("PAIRCHAT_SOAK") == "1"
PAIRS = [("alice", "bob"), ("alice", "carol")]

names = st.sampled_from(["alice", "bob", "carol"])
pairs = st.sampled_from(PAIRS)
texts = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=40)
client_ids = st.none() | st.sampled_from(["k1", "k2", "k3", "K1", "a-b_c"])
cursors = st.integers(min_value=0, max_value=40)
limits = st.none() | st.integers(min_value=1, max_value=12)


@dataclass(frozen=True)
class Row:
    id: int
    author: str
    message: str
    date_sent: int
    client_id: str | None

    def as_message(self) -> Message:
        return Message(self.id, self.author, self.message, self.date_sent, self.client_id)


def model_page(
    rows: list[Row], after_id: int | None, before_id: int | None, limit: int | None
) -> tuple[list[Message], bool]:
    """What a page must be, straight from the contract in docs/api.md."""
    if after_id is not None:
        chosen = [r for r in rows if r.id > after_id]
        page = chosen if limit is None else chosen[:limit]
    else:
        chosen = [r for r in rows if before_id is None or r.id < before_id]
        page = chosen if limit is None else chosen[-limit:]
    return [r.as_message() for r in page], len(page) < len(chosen)


class StorageMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.folder = Path(tempfile.mkdtemp(prefix="pairchat-stateful-"))
        self.store = ConversationStore(self.folder, max_open=1)
        self.model: dict[tuple[str, str], list[Row]] = {pair: [] for pair in PAIRS}
        self.created: set[tuple[str, str]] = set()
        self.clock = 1_764_000_000

    def teardown(self) -> None:
        self.check_integrity()
        self.store.close()
        shutil.rmtree(self.folder, ignore_errors=True)

    def _conversation(self, pair: tuple[str, str], create: bool = True) -> Conversation | None:
        # either side may ask: the file is the same
        one, two = pair if self.clock % 2 else pair[::-1]
        return self.store.get(one, two, create=create)

    @rule(pair=pairs, by_first=st.booleans(), text=texts, client_id=client_ids)
    def send(self, pair: tuple[str, str], by_first: bool, text: str, client_id: str | None) -> None:
        author = pair[0] if by_first else pair[1]
        self.clock += 1
        rows = self.model[pair]
        earlier = next(
            (
                r
                for r in rows
                if client_id is not None and (r.author, r.client_id) == (author, client_id)
            ),
            None,
        )
        conversation = self._conversation(pair)
        assert conversation is not None
        if earlier is not None and earlier.message != text:
            with pytest.raises(Conflict):
                conversation.add_message(author, text, self.clock, client_id)
            return
        stored = conversation.add_message(author, text, self.clock, client_id)
        self.created.add(pair)
        if earlier is not None:
            assert (stored.id, stored.date_sent, stored.duplicate) == (
                earlier.id,
                earlier.date_sent,
                True,
            )
            return
        expected_id = rows[-1].id + 1 if rows else 1
        assert (stored.id, stored.date_sent, stored.duplicate) == (expected_id, self.clock, False)
        rows.append(Row(stored.id, author, text, self.clock, client_id))

    @rule(pair=pairs, after_id=st.none() | cursors, before_id=st.none() | cursors, limit=limits)
    def page(
        self, pair: tuple[str, str], after_id: int | None, before_id: int | None, limit: int | None
    ) -> None:
        if after_id is not None and before_id is not None:
            before_id = None  # the service refuses both; the store answers after_id
        conversation = self._conversation(pair, create=False)
        if pair not in self.created:
            assert conversation is None, "a read never creates a file"
            assert not self.store.path_for(*pair).exists()
            return
        assert conversation is not None
        got = conversation.page(after_id=after_id, before_id=before_id, limit=limit)
        messages, has_more = model_page(self.model[pair], after_id, before_id, limit)
        assert got.messages == messages
        assert got.has_more == has_more

    @rule(pair=pairs)
    def create(self, pair: tuple[str, str]) -> None:
        conversation = self._conversation(pair)
        assert conversation is not None
        conversation.initialise_table()
        self.created.add(pair)

    @rule(pair=pairs)
    def close_connection(self, pair: tuple[str, str]) -> None:
        conversation = self._conversation(pair, create=False)
        if conversation is not None:
            conversation.close()  # the next call reopens the file

    @rule()
    def reopen_store(self) -> None:
        self.store.close()
        self.store = ConversationStore(self.folder, max_open=1)

    @precondition(lambda self: bool(self.created))
    @rule(pair=pairs)
    def forget(self, pair: tuple[str, str]) -> None:
        existed = self.store.forget(*pair)
        assert existed == (pair in self.created)
        self.created.discard(pair)
        self.model[pair] = []
        assert not list(self.folder.glob(f"{'_'.join(pair)}.db*"))

    @invariant()
    def files_match_the_model(self) -> None:
        on_disk = {p.name for p in self.store.files()}
        assert on_disk == {f"{a}_{b}.db" for a, b in self.created}
        for pair in self.created:
            conversation = self._conversation(pair, create=False)
            assert conversation is not None
            assert conversation.get_history() == [r.as_message() for r in self.model[pair]]
            rows = self.model[pair]
            assert conversation.last_id() == (rows[-1].id if rows else 0)
            for name in pair:
                assert conversation.count_from(name, 0) == sum(r.author == name for r in rows)

    def check_integrity(self) -> None:
        for path in self.store.files():
            conn = sqlite3.connect(path)
            try:
                assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            finally:
                conn.close()


StorageMachine.TestCase.settings = settings(
    max_examples=400 if SOAK else 40,
    stateful_step_count=40 if SOAK else 25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
# short profile in CI; `just soak` (-m slow, PAIRCHAT_SOAK=1) runs the long one
TestStorageAgainstModel = pytest.mark.slow(StorageMachine.TestCase)
