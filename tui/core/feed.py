"""The feed loop: the client's one held request, the event stream ``GET /events``
(or, where there is none, the long-poll ``GET /updates?since=…&wait=…``).

:class:`Feed` owns the feed's cursor. It first loads everything (my profile if
the session lacks it, the friend list, the feed from the start), then holds one
event stream open from that cursor; each ``feed`` event carries the new cursor, so
a stream that drops is opened again with ``Last-Event-ID`` set to the last one
and nothing is missed or seen twice. A 400 (a cursor the server no longer knows)
starts over. Each change goes to the :class:`~tui.core.friends.Roster`; what it
found is passed on: an erased pair that is open loads again, a read marker held
back for an unread chat goes, and the open chat catches up with what the feed
says it has (:meth:`~tui.core.open_chat.OpenChat.catch_up`).

The stream's first event comes at once (the server sends it before anything
waits), so "connected" shows as soon as the server answers. The feed falls back
to the long-poll, which it always had:

- when the server has no ``/events`` (404, or a reply that is no event stream);
  tried again after the server was unreachable (it may come back upgraded);
- when a proxy buffers the stream: its first event has not arrived
  ``first_event_timeout`` seconds after the request, while a plain ``/updates``
  asked right then answers within that time (a slow server is not mistaken
  for a buffering proxy). The long-poll's replies are complete, so they pass
  such a proxy; the feed stays on the long-poll for the rest of the session.

How the stream ends decides what comes next: ``shutdown`` (or a dropped
connection) reconnects as after any failure (:class:`~tui.core.connection.Connection`);
``unauthorized`` reconnects after the ``retry`` time (a sign-out on this client has
ended the session by then), and the 401 that follows ends the session;
``replaced`` (this user holds more streams and long-polls than the server allows,
and this one was the oldest) is not fought: no held request for the server's
``retry`` time (at least ``REPLACED_PAUSE``), only a quick ``/updates`` every
``QUIET_POLL`` seconds, then the stream again. A long-poll reply with
``Retry-After`` (a full server answering early) pauses that long before the next.
After a failure the long-poll probes with ``wait=0`` until it gets an answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from typing import Literal

from tui.client.events import Retry, StreamEnd
from tui.client.http import NOT_EVENT_STREAM, ApiError, PairchatClient, ServerUnreachable
from tui.client.models import Change
from tui.client.models import Feed as FeedReply
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
FIRST_EVENT_TIMEOUT = 5.0
"""Seconds from asking for the stream to its first event before a proxy is suspected of
buffering it (the server sends that event at once)."""
STREAM_RETRY = 2.0
"""Seconds before reopening a stream the server closed without a word (its ``retry:`` wins)."""
REPLACED_PAUSE = 30.0
"""The least time without a held request after the server replaced our stream."""
QUIET_POLL = 15.0
"""Seconds between the quick ``/updates`` (no ``wait``) asked while the stream is paused."""

Mode = Literal["stream", "no-stream", "buffered", "replaced"]


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
        first_event_timeout: float = FIRST_EVENT_TIMEOUT,
    ) -> None:
        self.client = client
        self.connection = connection
        self.tasks = tasks
        self.account = account
        self.roster = roster
        self.opened = opened
        self.markers = markers
        self.poll_wait = poll_wait
        self.first_event_timeout = first_event_timeout
        self.cursor: str | None = None
        self.mode: Mode = "stream"
        """How live updates come: ``stream``; the long-poll because the server has none
        (``no-stream``) or a proxy buffers it (``buffered``); or ``replaced`` (paused)."""
        self.paused_until = 0.0
        """With ``replaced``: the ``time.monotonic()`` at which the stream is tried again."""
        self.retry = STREAM_RETRY
        """Seconds the server last advised (``retry:``) to wait before reconnecting."""

    @property
    def live_updates(self) -> str:
        """How live updates come, in words (the F1 and account screens show it)."""
        match self.mode:
            case "stream":
                return "event stream"
            case "no-stream":
                return "long-poll (this server has no event stream)"
            case "buffered":
                return "long-poll (a proxy buffers the event stream)"
            case "replaced":
                seconds = max(0, round(self.paused_until - time.monotonic()))
                return (
                    f"checked every {QUIET_POLL:g} s: this account holds more live "
                    f"connections than the server allows (the event stream again in {seconds} s)"
                )

    async def loop(self) -> None:
        while True:
            try:
                if self.cursor is None:
                    await self._load_everything()
                    await self.opened.catch_up()
                elif self.mode == "stream":
                    await self._stream()
                elif self.mode == "replaced":
                    await self._quiet_poll()
                else:
                    await self._poll()
            except (ApiError, ServerUnreachable) as exc:
                if isinstance(exc, ApiError) and exc.status == 400:
                    self.cursor = None  # a cursor the server no longer knows: start over
                if isinstance(exc, ServerUnreachable) and self.mode == "no-stream":
                    self.mode = "stream"  # it may come back with one
                await self.tasks.retry_after(exc)

    async def _load_everything(self) -> None:
        await self.account.load_profile()
        listing = await self.client.friends()
        feed = await self.client.updates()
        self.connection.ok()
        self.roster.set_listing(listing)
        self.cursor = feed.cursor
        self._apply(feed.changes, initial=True)

    # -- the event stream ---------------------------------------------------------------
    async def _stream(self) -> None:
        """Hold one stream from the cursor until it ends, then decide what comes next."""
        deadline = asyncio.timeout(self.first_event_timeout)
        ended: StreamEnd | None = None
        try:
            async with deadline, contextlib.aclosing(self.client.events(self.cursor)) as stream:
                async for item in stream:
                    if isinstance(item, Retry):
                        self.retry = item.seconds
                    elif isinstance(item, StreamEnd):
                        ended = item
                        break
                    else:
                        deadline.reschedule(None)
                        self._take(item)
                        await self.opened.catch_up()
        except TimeoutError:
            if not deadline.expired():
                raise
            await self._held_back()
            return
        except ApiError as exc:
            if exc.status == 404 or exc.code == NOT_EVENT_STREAM:
                self.mode = "no-stream"
                return
            raise
        await self._after(ended)

    async def _after(self, ended: StreamEnd | None) -> None:
        if ended is None:  # closed without a word (a proxy's idle limit, say): as EventSource
            await asyncio.sleep(self.retry * random.uniform(1.0, 1.25))
        elif ended.reason == "unauthorized":
            # The next request gets the 401 that ends the session. Not at once: a sign-out
            # on this very client ends its stream too, a moment before its own reply comes,
            # and then the sign-out, not this loop, takes the app to the sign-in screen.
            await asyncio.sleep(self.retry * random.uniform(1.0, 1.25))
            if self.client.token is None:  # signed out here: this session is being left
                await asyncio.Event().wait()
        elif ended.reason == "replaced":
            pause = max(self.retry, REPLACED_PAUSE) * random.uniform(1.0, 1.25)
            self.paused_until = time.monotonic() + pause
            self.mode = "replaced"
        else:  # shutdown, or a reason this client does not know
            await self.tasks.retry_after(
                ServerUnreachable(self.client.base_url, ended.message or ended.reason)
            )

    async def _held_back(self) -> None:
        """The first event did not come in time: a buffering proxy, or a slow server?

        A plain ``/updates`` tells: answered within the same time, the server is quick
        and something between holds the stream back; the long-poll from now on."""
        asked = time.monotonic()
        feed = await self.client.updates(since=self.cursor)
        self._take(feed)
        await self.opened.catch_up()
        if time.monotonic() - asked < self.first_event_timeout:
            self.mode = "buffered"

    # -- the long-poll ------------------------------------------------------------------
    async def _poll(self) -> None:
        # Until a request gets through after a failure, probe without holding.
        wait = self.poll_wait if self.connection.current.state == "connected" else 0.0
        started = time.monotonic()
        feed = await self.client.updates(since=self.cursor, wait=wait)
        self._take(feed)
        await self.opened.catch_up()
        if feed.retry_after is not None:  # a full server answered early: it says when to ask
            await asyncio.sleep(max(feed.retry_after, MIN_POLL_INTERVAL) * random.uniform(1, 1.25))
        elif wait and not feed.changes and time.monotonic() - started < MIN_POLL_INTERVAL:
            await asyncio.sleep(MIN_POLL_INTERVAL)

    async def _quiet_poll(self) -> None:
        """While the stream is paused (``replaced``): a quick look now and then, nothing held."""
        feed = await self.client.updates(since=self.cursor)
        self._take(feed)
        await self.opened.catch_up()
        left = self.paused_until - time.monotonic()
        await asyncio.sleep(max(0.0, min(QUIET_POLL, left)))
        if time.monotonic() >= self.paused_until:
            self.mode = "stream"

    # -- applying -----------------------------------------------------------------------
    def _take(self, feed: FeedReply) -> None:
        self.connection.ok()
        self.cursor = feed.cursor or self.cursor
        if feed.changes:
            self._apply(feed.changes)

    def _apply(self, changes: tuple[Change, ...], initial: bool = False) -> None:
        open_peer = self.opened.peer
        applied = self.roster.apply(changes, open_peer=open_peer, initial=initial)
        if open_peer is not None and open_peer in applied.erased:
            self.opened.reopen(open_peer)
        self.markers.unread(applied.unread)
