"""Read markers: what the view showed, and telling the server it was read.

:class:`ReadMarkers` owns, per chat, the newest message seen (reported by the
view only for messages that were on screen in the focused chat: :meth:`seen`)
and the newest the server was told, and runs the marker loop (``POST
/mark_read``). A chat is marked only while the server counts it unread; a marker
held back because the feed had not said so yet goes as soon as it does
(:meth:`ReadMarkers.unread`). The server's new unread count goes to the
:class:`~tui.core.friends.Roster`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from tui.client.http import ApiError, PairchatClient, ServerUnreachable
from tui.core.connection import Connection
from tui.core.friends import Roster
from tui.core.tasks import Tasks


class ReadMarkers:
    def __init__(
        self, client: PairchatClient, connection: Connection, tasks: Tasks, roster: Roster
    ) -> None:
        self.client = client
        self.connection = connection
        self.tasks = tasks
        self.roster = roster
        self._seen: dict[str, int] = {}
        self._told: dict[str, int] = {}
        self._wakeup = asyncio.Event()

    def seen(self, peer: str, message_id: int) -> None:
        """The view showed ``peer``'s messages up to ``message_id`` in the focused chat."""
        if message_id > self._seen.get(peer, 0):
            self._seen[peer] = message_id
            self._wakeup.set()

    def unread(self, peers: Iterable[str]) -> None:
        """The feed says ``peers`` have unread messages: send what was seen before it said so."""
        if any(self._seen.get(peer, 0) > self._told.get(peer, 0) for peer in peers):
            self._wakeup.set()

    async def loop(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            for peer, seen in list(self._seen.items()):
                friend = self.roster.friends.get(peer)
                if seen <= self._told.get(peer, 0) or friend is None or not friend.unread:
                    continue
                try:
                    unread = await self.client.mark_read(peer, seen)
                except (ApiError, ServerUnreachable) as exc:
                    self._wakeup.set()  # try again after the pause
                    await self.tasks.retry_after(exc)
                    break
                self.connection.ok()
                self._told[peer] = seen
                self.roster.set_unread(peer, unread)
