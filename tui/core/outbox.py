"""The outbox: messages typed but not yet confirmed by the server, kept on disk.

A message enters the outbox the moment Enter is pressed and leaves it only when
the server has answered with its ``id``, or when the user discards it after the
server refused it for good (e.g. ``blocked``: it stays, marked failed, until the
user retries or discards it). Every change goes straight to disk through
:class:`~tui.core.store.SharedJsonFile`, so quitting or crashing while offline
loses nothing, and two instances sharing a config folder merge their changes
instead of overwriting each other. The next start sends what is left, with the
same ``client_id``, so the server stores each message exactly once, even when two
instances both send it.

No Textual and no network: the sync core drives it.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from tui.core.store import SharedJsonFile


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
    """``send`` a new message, ``edit`` or ``delete`` message ``target`` of the pair."""
    target: int | None = None
    reply_to: int | None = None

    @property
    def failed(self) -> bool:
        return self.error is not None

    @property
    def is_send(self) -> bool:
        return self.kind == "send"

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

    # -- changes (each one on disk before it returns) ------------------------------
    def add(
        self,
        to: str,
        text: str,
        *,
        kind: str = "send",
        target: int | None = None,
        reply_to: int | None = None,
    ) -> OutboxItem:
        item = OutboxItem(to=to, text=text, kind=kind, target=target, reply_to=reply_to)
        self._change(lambda items: [*items, item])
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
