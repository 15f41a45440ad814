"""The feed loop: the client's one held request, ``GET /updates?since=…&wait=…``.

:class:`Feed` owns the feed's cursor. It first loads everything (my profile if
the session lacks it, the friend list, the feed from the start), then long-polls;
a 400 (a cursor the server no longer knows) starts over. Each change goes to the
:class:`~tui.core.friends.Roster`; what it found is passed on: an erased pair
that is open loads again, a read marker held back for an unread chat goes, and
the open chat catches up with what the feed says it has
(:meth:`~tui.core.open_chat.OpenChat.catch_up`). After a failure the feed probes
with ``wait=0`` until it gets an answer, so "connected" shows as soon as the
server answers, not when a long-poll ends.
"""

from __future__ import annotations

import asyncio
import time

from tui.client.http import ApiError, PairchatClient, ServerUnreachable
from tui.client.models import Change
from tui.core.account import Account
from tui.core.connection import Connection
from tui.core.friends import Roster
from tui.core.markers import ReadMarkers
from tui.core.open_chat import OpenChat
from tui.core.tasks import Tasks

POLL_WAIT = 50.0
"""Seconds the server may hold the feed's long-poll (it caps it at 60)."""
MIN_POLL_INTERVAL = 1.0
"""A long-poll that comes back empty sooner than this (a server without ``wait``) sleeps first."""


class Feed:
    def __init__(
        self,
        client: PairchatClient,
        connection: Connection,
        tasks: Tasks,
        account: Account,
        roster: Roster,
        opened: OpenChat,
        markers: ReadMarkers,
        poll_wait: float = POLL_WAIT,
    ) -> None:
        self.client = client
        self.connection = connection
        self.tasks = tasks
        self.account = account
        self.roster = roster
        self.opened = opened
        self.markers = markers
        self.poll_wait = poll_wait
        self.cursor: str | None = None

    async def loop(self) -> None:
        while True:
            try:
                if self.cursor is None:
                    await self._load_everything()
                else:
                    await self._poll()
                await self.opened.catch_up()
            except (ApiError, ServerUnreachable) as exc:
                if isinstance(exc, ApiError) and exc.status == 400:
                    self.cursor = None  # a cursor the server no longer knows: start over
                await self.tasks.retry_after(exc)

    async def _load_everything(self) -> None:
        await self.account.load_profile()
        listing = await self.client.friends()
        feed = await self.client.updates()
        self.connection.ok()
        self.roster.set_listing(listing)
        self.cursor = feed.cursor
        self._apply(feed.changes, initial=True)

    async def _poll(self) -> None:
        # Until a request gets through after a failure, probe without holding.
        wait = self.poll_wait if self.connection.current.state == "connected" else 0.0
        started = time.monotonic()
        feed = await self.client.updates(since=self.cursor, wait=wait)
        self.connection.ok()
        self.cursor = feed.cursor or self.cursor
        if feed.changes:
            self._apply(feed.changes)
        elif wait and time.monotonic() - started < MIN_POLL_INTERVAL:
            await asyncio.sleep(MIN_POLL_INTERVAL)

    def _apply(self, changes: tuple[Change, ...], initial: bool = False) -> None:
        open_peer = self.opened.peer
        applied = self.roster.apply(changes, open_peer=open_peer, initial=initial)
        if open_peer is not None and open_peer in applied.erased:
            self.opened.reopen(open_peer)
        self.markers.unread(applied.unread)
