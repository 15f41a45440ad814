"""The outbox: messages typed but not yet confirmed by the server, kept on disk.

A message enters the outbox the moment Enter is pressed and leaves it only when
the server has answered with its ``id`` (or refused it for good, e.g. ``blocked``:
then it stays, marked failed, until the user dismisses it). Every change is
written to a JSON file atomically (temp file + ``os.replace``), so quitting or
crashing while offline loses nothing; the next start sends what is left, with the
same ``client_id``, so the server stores each message exactly once.

No Textual and no I/O besides the file: the app's sender worker drives it.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


def new_client_id() -> str:
    return uuid.uuid4().hex


@dataclass
class OutboxItem:
    to: str
    text: str
    client_id: str = field(default_factory=new_client_id)
    created: float = field(default_factory=time.time)
    attempts: int = 0
    error: str | None = None
    """Set when the server refused the message for good (it is not retried)."""

    @property
    def failed(self) -> bool:
        return self.error is not None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> OutboxItem | None:
        try:
            return cls(
                to=str(data["to"]),
                text=str(data["text"]),
                client_id=str(data["client_id"]),
                created=float(data.get("created", time.time())),
                attempts=int(data.get("attempts", 0)),
                error=None if data.get("error") is None else str(data["error"]),
            )
        except (KeyError, TypeError, ValueError):
            return None


class Outbox:
    """An ordered, persistent list of :class:`OutboxItem` (oldest first)."""

    VERSION = 1

    def __init__(self, path: Path) -> None:
        self.path = path
        self._items: list[OutboxItem] = []
        self.load()

    def load(self) -> None:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            data = {}
        except (OSError, ValueError):
            # Keep an unreadable file aside rather than overwrite what it may hold.
            with contextlib.suppress(OSError):
                os.replace(self.path, self.path.with_suffix(f".corrupt-{int(time.time())}"))
            data = {}
        raw = data.get("items", []) if isinstance(data, dict) else []
        items = (OutboxItem.from_json(entry) for entry in raw if isinstance(entry, dict))
        self._items = [item for item in items if item is not None]

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        payload = {"version": self.VERSION, "items": [asdict(item) for item in self._items]}
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(payload, handle, ensure_ascii=False, indent=1)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise

    # -- queries ----------------------------------------------------------------
    def __iter__(self) -> Iterator[OutboxItem]:
        return iter(list(self._items))

    def __len__(self) -> int:
        return len(self._items)

    def for_peer(self, peer: str) -> list[OutboxItem]:
        return [item for item in self._items if item.to == peer]

    def next_to_send(self) -> OutboxItem | None:
        return next((item for item in self._items if not item.failed), None)

    def get(self, client_id: str) -> OutboxItem | None:
        return next((item for item in self._items if item.client_id == client_id), None)

    @property
    def pending_count(self) -> int:
        return sum(1 for item in self._items if not item.failed)

    # -- changes (each one persisted) ---------------------------------------------
    def add(self, to: str, text: str) -> OutboxItem:
        item = OutboxItem(to=to, text=text)
        self._items.append(item)
        self.save()
        return item

    def remove(self, client_id: str) -> OutboxItem | None:
        item = self.get(client_id)
        if item is not None:
            self._items.remove(item)
            self.save()
        return item

    def attempted(self, client_id: str) -> None:
        item = self.get(client_id)
        if item is not None:
            item.attempts += 1
            self.save()

    def fail(self, client_id: str, error: str) -> None:
        item = self.get(client_id)
        if item is not None:
            item.error = error
            self.save()

    def retry(self, client_id: str) -> None:
        item = self.get(client_id)
        if item is not None and item.failed:
            item.error = None
            self.save()
