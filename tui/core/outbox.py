"""The outbox: messages typed but not yet confirmed by the server, kept on disk.

A message enters the outbox the moment Enter is pressed and leaves it only when
the server has answered with its ``id``, or when the user discards it after the
server refused it for good (e.g. ``blocked``: it stays, marked failed, until the
user retries or discards it). A file is an item too (``kind`` ``file``): the outbox
keeps its ``path`` (not its bytes), and the file is read from disk when it is sent,
so a file chosen offline goes once the server is back, like a message. Every change
goes straight to disk through :class:`~tui.core.store.SharedJsonFile`, so quitting
or crashing while offline loses nothing, and two instances sharing a config folder
merge their changes instead of overwriting each other. The next start sends what is left, with the
same ``client_id``, so the server stores each message exactly once, even when two
instances both send it.

It is bounded: :data:`MAX_OUTBOX_PER_CHAT` items for one person and
:data:`MAX_OUTBOX` in all (docs/client.md says why). One more is refused with
:class:`OutboxFull`, checked against the file under its lock, and the composer
keeps the text.

No Textual and no network: the sync core drives it.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from tui.core.store import SharedJsonFile

MAX_OUTBOX_PER_CHAT = 50
"""Items (messages, edits, deletes) waiting for one person at most: more than anyone
types offline in one chat, and at 4,000 characters each still only 200,000 characters."""
MAX_OUTBOX = 200
"""Items waiting in all: the whole file is rewritten on every change (a read-modify-write
under its lock), so it must stay small; 200 full messages are 800,000 characters."""


class OutboxFull(Exception):
    """One more item for ``peer`` would pass :data:`MAX_OUTBOX_PER_CHAT` (``in_all``
    False) or :data:`MAX_OUTBOX`; ``waiting`` is how many are there, ``refused`` how
    many of them the server refused (they stay until discarded)."""

    def __init__(self, peer: str, waiting: int, refused: int, *, in_all: bool) -> None:
        self.peer, self.waiting, self.refused, self.in_all = peer, waiting, refused, in_all
        super().__init__(self.message)

    @property
    def message(self) -> str:
        if self.in_all:
            waiting = f"{self.waiting} messages are waiting to be sent (at most {MAX_OUTBOX})"
        else:
            waiting = (
                f"{self.waiting} messages to {self.peer} are waiting to be sent "
                f"(at most {MAX_OUTBOX_PER_CHAT} to one person)"
            )
        text = f"{waiting}: this one was not added; it is still in the box, to send once "
        text += "some have gone."
        if self.refused:
            were = "was" if self.refused == 1 else "were"
            text += f" {self.refused} of them {were} refused: F7 lists them, to discard."
        return text


def new_client_id() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True)
class OutboxItem:
    to: str
    text: str
    client_id: str = field(default_factory=new_client_id)
    created: float = field(default_factory=time.time)
    attempts: int = 0
    error: str | None = None
    """Set when the server refused the message for good (it is not retried by itself)."""
    kind: str = "send"
    """``send`` a new message, ``file`` a new message with the file at ``path`` (``text``
    its caption), ``edit`` or ``delete`` message ``target`` of the pair."""
    target: int | None = None
    reply_to: int | None = None
    path: str | None = None
    """The file to send (``kind`` ``file``): absolute, read when it is sent."""

    @property
    def failed(self) -> bool:
        return self.error is not None

    @property
    def is_send(self) -> bool:
        """A new message (with or without a file), not a change to one."""
        return self.kind in ("send", "file")

    @property
    def file_name(self) -> str:
        """The name of the file it sends ("" for a text message)."""
        return Path(self.path).name if self.kind == "file" and self.path else ""

    @property
    def summary(self) -> str:
        """What it sends, in words for a list: the text, and the file's name if any."""
        if not self.file_name:
            return self.text
        return f"\U0001f4ce {self.file_name}" + (f" {self.text}" if self.text else "")

    @classmethod
    def from_json(cls, data: Any) -> OutboxItem | None:
        if not isinstance(data, dict):
            return None
        try:
            return cls(
                to=str(data["to"]),
                text=str(data["text"]),
                client_id=str(data["client_id"]),
                created=float(data.get("created", time.time())),
                attempts=int(data.get("attempts", 0)),
                error=None if data.get("error") is None else str(data["error"]),
                kind=str(data.get("kind", "send")),
                target=None if data.get("target") is None else int(data["target"]),
                reply_to=None if data.get("reply_to") is None else int(data["reply_to"]),
                path=None if data.get("path") is None else str(data["path"]),
            )
        except (KeyError, TypeError, ValueError):
            return None


class Outbox:
    """An ordered, persistent list of :class:`OutboxItem` (oldest first)."""

    VERSION = 1

    def __init__(self, path: Path) -> None:
        self.file = SharedJsonFile(path)
        self._items: tuple[OutboxItem, ...] = ()
        self.reload()

    @property
    def path(self) -> Path:
        return self.file.path

    def _take(self, data: dict[str, Any]) -> None:
        raw = data.get("items", [])
        items = (OutboxItem.from_json(entry) for entry in raw if isinstance(raw, list))
        self._items = tuple(item for item in items if item is not None)

    def reload(self) -> bool:
        """Read the file again (another instance may have changed it); True if it changed."""
        before = self._items
        self._take(self.file.read())
        return self._items != before

    def reload_if_changed(self) -> bool:
        return self.file.changed_on_disk() and self.reload()

    def _change(self, edit: Any) -> None:
        def apply(data: dict[str, Any]) -> None:
            self._take(data)
            items = edit(list(self._items))
            data["version"] = self.VERSION
            data["items"] = [asdict(item) for item in items]

        self._take(self.file.update(apply))

    # -- queries ----------------------------------------------------------------
    @property
    def items(self) -> tuple[OutboxItem, ...]:
        return self._items

    def __len__(self) -> int:
        return len(self._items)

    def for_peer(self, peer: str) -> list[OutboxItem]:
        """New messages waiting for ``peer`` (edits and deletes are shown on their message)."""
        return [item for item in self._items if item.to == peer and item.is_send]

    def changes_for(self, peer: str) -> dict[int, OutboxItem]:
        """Edits and deletes waiting in ``peer``'s chat, by the message they change."""
        return {
            item.target: item
            for item in self._items
            if item.to == peer and not item.is_send and item.target is not None
        }

    def next_to_send(self) -> OutboxItem | None:
        return next((item for item in self._items if not item.failed), None)

    def get(self, client_id: str) -> OutboxItem | None:
        return next((item for item in self._items if item.client_id == client_id), None)

    @property
    def pending_count(self) -> int:
        return sum(1 for item in self._items if not item.failed)

    @property
    def failed_count(self) -> int:
        return sum(1 for item in self._items if item.failed)

    def full_for(self, peer: str) -> OutboxFull | None:
        """Why one more item for ``peer`` would be refused (as the file is now), or None."""
        self.reload_if_changed()  # a stat; another instance may have added some
        return _full(self._items, peer)

    # -- changes (each one on disk before it returns) ------------------------------
    def add(
        self,
        to: str,
        text: str,
        *,
        kind: str = "send",
        target: int | None = None,
        reply_to: int | None = None,
        path: str | None = None,
    ) -> OutboxItem:
        """Append an item; :class:`OutboxFull` (and nothing written) past the bounds."""
        item = OutboxItem(to=to, text=text, kind=kind, target=target, reply_to=reply_to, path=path)

        def append(items: list[OutboxItem]) -> list[OutboxItem]:
            full = _full(items, to)
            if full is not None:
                raise full
            return [*items, item]

        self._change(append)
        return item

    def remove(self, client_id: str) -> OutboxItem | None:
        item = self.get(client_id)
        self._change(lambda items: [i for i in items if i.client_id != client_id])
        return item

    def _edit(self, client_id: str, **changes: Any) -> None:
        self._change(
            lambda items: [replace(i, **changes) if i.client_id == client_id else i for i in items]
        )

    def attempted(self, client_id: str) -> None:
        item = self.get(client_id)
        if item is not None:
            self._edit(client_id, attempts=item.attempts + 1)

    def fail(self, client_id: str, error: str) -> None:
        self._edit(client_id, error=error)

    def retry(self, client_id: str) -> None:
        self._edit(client_id, error=None)


def _full(items: Sequence[OutboxItem], peer: str) -> OutboxFull | None:
    if len(items) >= MAX_OUTBOX:
        refused = sum(1 for item in items if item.failed)
        return OutboxFull(peer, len(items), refused, in_all=True)
    mine = [item for item in items if item.to == peer]
    if len(mine) >= MAX_OUTBOX_PER_CHAT:
        refused = sum(1 for item in mine if item.failed)
        return OutboxFull(peer, len(mine), refused, in_all=False)
    return None
