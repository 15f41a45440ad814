"""The user's per-chat preferences kept on this computer: which chats are muted.

A muted chat still counts its unread messages, but rings no bell, shows no toast
and sends no desktop notification. Stored in ``prefs-<user>.json`` beside the
outbox, through :class:`~tui.core.store.SharedJsonFile` (two instances share it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tui.core.store import SharedJsonFile


class Prefs:
    def __init__(self, path: Path) -> None:
        self.file = SharedJsonFile(path)
        self.muted: frozenset[str] = self._muted(self.file.read())

    @staticmethod
    def _muted(data: dict[str, Any]) -> frozenset[str]:
        muted = data.get("muted", [])
        return frozenset(str(name) for name in muted) if isinstance(muted, list) else frozenset()

    def set_muted(self, peer: str, muted: bool) -> None:
        def apply(data: dict[str, Any]) -> None:
            names = set(self._muted(data))
            if muted:
                names.add(peer)
            else:
                names.discard(peer)
            data["muted"] = sorted(names)

        self.muted = self._muted(self.file.update(apply))
