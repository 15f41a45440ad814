"""Per-chat drafts: what was typed in a chat and not sent, kept across chat switches and restarts.

The composer reports its text on every change; this keeps it in memory and
writes changed chats to ``drafts-<user>.json``: :meth:`Drafts.save_soon` a
second after typing stops, :meth:`Drafts.save` on every chat switch and on quit.
Only the chats changed here are written, merged into what is on disk, so two
instances on one config folder keep each other's drafts.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from tui.core.store import SharedJsonFile

log = logging.getLogger(__name__)

DRAFT_SAVE_DELAY = 1.0
"""Seconds after the last change before the drafts are written."""


MAX_DRAFT = 64_000
"""Characters a draft (and the message box) holds at most: 16 messages' worth, room to
cut a long text down. Past it a paste is cut and the user told (a 10 MB paste was once
kept whole, saved as an 11.8 MB draft and restored into every next session); a draft
on disk from before is cut to it when read."""


class Drafts:
    def __init__(self, path: Path) -> None:
        self.file = SharedJsonFile(path)
        data = self.file.read().get("drafts", {})
        self._drafts: dict[str, str] = (
            {str(k): str(v)[:MAX_DRAFT] for k, v in data.items() if v}
            if isinstance(data, dict)
            else {}
        )
        self._dirty: set[str] = set()
        self._timer: asyncio.TimerHandle | None = None

    def get(self, peer: str) -> str:
        return self._drafts.get(peer, "")

    def set(self, peer: str, text: str) -> None:
        text = text[:MAX_DRAFT]
        if self._drafts.get(peer, "") == text:
            return
        if text:
            self._drafts[peer] = text
        else:
            self._drafts.pop(peer, None)
        self._dirty.add(peer)

    @property
    def dirty(self) -> bool:
        return bool(self._dirty)

    def flush(self) -> None:
        """Write the chats changed since the last flush."""
        if not self._dirty:
            return
        changed = {peer: self._drafts.get(peer, "") for peer in self._dirty}

        def apply(data: dict[str, Any]) -> None:
            drafts = data.get("drafts")
            if not isinstance(drafts, dict):
                drafts = {}
            for peer, text in changed.items():
                if text:
                    drafts[peer] = text
                else:
                    drafts.pop(peer, None)
            data["drafts"] = drafts

        self.file.update(apply)
        self._dirty -= set(changed)

    def save_soon(self) -> None:
        """Write the changes ``DRAFT_SAVE_DELAY`` after the first unsaved one (in a loop)."""
        if self.dirty and self._timer is None:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(DRAFT_SAVE_DELAY, self.save)

    def save(self) -> None:
        """Write the changes now (a chat switch, quitting); a failure is logged, not raised."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        try:
            self.flush()
        except OSError:
            log.exception("could not save drafts")
