"""The storage layer against a model: a hypothesis state machine over real SQLite files.

``ConversationStore`` and ``Conversation`` are driven with random sequences of
sends (with and without ``client_id``, with and without ``reply_to``), edits and
deletions by either side, pages in every direction, changes after a revision,
windows around a message, closes, evictions (``max_open=1`` over two pairs), a
fresh store on the same folder, and ``forget``; after every step they must agree
with a list in memory.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from backend.core.errors import (
    Conflict,
    InvalidField,
    MessageDeleted,
    NotYourMessage,
    UnknownMessage,
)
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
    rev: int
    edited_at: int | None = None
    deleted: bool = False
    reply_to: int | None = None

    def as_message(self) -> Message:
        return Message(
            self.id,
            self.author,
            self.message,
            self.date_sent,
            self.client_id,
            self.rev,
            self.edited_at,
            self.deleted,
            self.reply_to,
        )


def revision(rows: list[Row]) -> int:
    return max((r.rev for r in rows), default=0)


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

    @rule(
        pair=pairs,
        by_first=st.booleans(),
        text=texts,
        client_id=client_ids,
        reply_to=st.none() | cursors,
    )
    def send(
        self,
        pair: tuple[str, str],
        by_first: bool,
        text: str,
        client_id: str | None,
        reply_to: int | None,
    ) -> None:
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
        self.created.add(pair)
        changed_since = earlier is not None and (earlier.edited_at or earlier.deleted)
        if earlier is not None and earlier.message != text and not changed_since:
            with pytest.raises(Conflict):
                conversation.add_message(author, text, self.clock, client_id, reply_to)
            return
        if earlier is None and reply_to is not None and reply_to not in {r.id for r in rows}:
            with pytest.raises(InvalidField):
                conversation.add_message(author, text, self.clock, client_id, reply_to)
            return
        stored = conversation.add_message(author, text, self.clock, client_id, reply_to)
        if earlier is not None:
            assert (stored.id, stored.date_sent, stored.duplicate, stored.rev) == (
                earlier.id,
                earlier.date_sent,
                True,
                earlier.rev,
            )
            return
        expected_id = rows[-1].id + 1 if rows else 1
        expected = (expected_id, self.clock, False, revision(rows) + 1)
        assert (stored.id, stored.date_sent, stored.duplicate, stored.rev) == expected
        rows.append(
            Row(stored.id, author, text, self.clock, client_id, stored.rev, reply_to=reply_to)
        )

    def _target(self, pair: tuple[str, str], index: int) -> tuple[Conversation, int] | None:
        conversation = self._conversation(pair, create=False)
        if conversation is None:
            return None
        rows = self.model[pair]
        return conversation, (rows[index % len(rows)].id if rows else index + 1)

    @precondition(lambda self: bool(self.created))
    @rule(pair=pairs, index=st.integers(0, 60), by_first=st.booleans(), text=texts)
    def edit(self, pair: tuple[str, str], index: int, by_first: bool, text: str) -> None:
        target = self._target(pair, index)
        if target is None:
            return
        conversation, message_id = target
        editor = pair[0] if by_first else pair[1]
        self.clock += 1
        rows = self.model[pair]
        position = next((n for n, r in enumerate(rows) if r.id == message_id), None)
        if position is None:
            with pytest.raises(UnknownMessage):
                conversation.edit_message(message_id, editor, text, self.clock)
            return
        row = rows[position]
        if row.author != editor:
            with pytest.raises(NotYourMessage):
                conversation.edit_message(message_id, editor, text, self.clock)
        elif row.deleted:
            with pytest.raises(MessageDeleted):
                conversation.edit_message(message_id, editor, text, self.clock)
        else:
            result = conversation.edit_message(message_id, editor, text, self.clock)
            if text != row.message:
                rows[position] = replace(
                    row, message=text, edited_at=self.clock, rev=revision(rows) + 1
                )
            assert result.changed == (text != row.message)
            assert result.message == rows[position].as_message()

    @precondition(lambda self: bool(self.created))
    @rule(pair=pairs, index=st.integers(0, 60), by_first=st.booleans())
    def delete(self, pair: tuple[str, str], index: int, by_first: bool) -> None:
        target = self._target(pair, index)
        if target is None:
            return
        conversation, message_id = target
        editor = pair[0] if by_first else pair[1]
        rows = self.model[pair]
        position = next((n for n, r in enumerate(rows) if r.id == message_id), None)
        if position is None:
            with pytest.raises(UnknownMessage):
                conversation.delete_message(message_id, editor)
            return
        row = rows[position]
        if row.author != editor:
            with pytest.raises(NotYourMessage):
                conversation.delete_message(message_id, editor)
            return
        result = conversation.delete_message(message_id, editor)
        assert result.changed == (not row.deleted)
        if not row.deleted:
            rows[position] = replace(row, message="", deleted=True, rev=revision(rows) + 1)
        assert result.message == rows[position].as_message()

    @rule(pair=pairs, after_rev=cursors, limit=st.integers(min_value=1, max_value=12))
    def changes(self, pair: tuple[str, str], after_rev: int, limit: int) -> None:
        conversation = self._conversation(pair, create=False)
        if conversation is None:
            return
        rows = self.model[pair]
        changed = sorted((r for r in rows if r.rev > after_rev), key=lambda r: r.rev)
        got = conversation.changes(after_rev, limit)
        assert got.messages == [r.as_message() for r in changed[:limit]]
        assert got.has_more == (len(changed) > limit)
        assert got.rev == (changed[limit - 1].rev if got.has_more else revision(rows))

    @precondition(lambda self: bool(self.created))
    @rule(pair=pairs, index=st.integers(0, 60), limit=st.integers(min_value=1, max_value=12))
    def around(self, pair: tuple[str, str], index: int, limit: int) -> None:
        target = self._target(pair, index)
        if target is None:
            return
        conversation, message_id = target
        rows = self.model[pair]
        ids = [r.id for r in rows]
        if message_id not in ids:
            with pytest.raises(UnknownMessage):
                conversation.around(message_id, limit)
            return
        got = conversation.around(message_id, limit)
        got_ids = [m.id for m in got.messages]
        assert message_id in got_ids and got_ids == sorted(got_ids)
        assert len(got_ids) == min(limit, len(rows))
        start, end = ids.index(got_ids[0]), ids.index(got_ids[-1])
        assert got_ids == ids[start : end + 1], "one contiguous run"
        assert (got.has_more, got.has_more_after) == (start > 0, end < len(ids) - 1)
        position = got_ids.index(message_id)
        if start > 0 and end < len(ids) - 1:  # room on both sides: centred
            assert abs(position - (len(got_ids) - 1 - position)) <= 1

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
        assert got.rev == revision(self.model[pair])

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
            assert conversation.revision() == revision(rows)
            for name in pair:
                mine = sum(r.author == name and not r.deleted for r in rows)
                assert conversation.count_from(name, 0) == mine

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
