"""Keys in arrival order: each key is routed against the focus the keys before it produced.

Textual hands a key to the focused widget by posting it to that widget's queue
and goes straight on to the next key. When one key moves the focus (Esc back to
the friend list, Tab to the password field, Enter that opens a chat or a
dialog), the move is itself a message queued behind it — so the keys that
arrived with it in one burst were already posted to the *old* focus: Esc ↓ Enter
sent the draft, ``alice⇥secret⏎`` put the password in the Username field, and a
Ctrl+Q right behind the last letters quit before those letters reached the box.

:class:`OrderedInput` is the app's one path for keys and pastes. The app hands
it every key and paste as they arrive (:meth:`accept`); one task routes them one
at a time, the way Textual would, and before routing the next waits until the
app has *settled*: every message pump — the app, each screen on its stack and
each widget on them — has an empty queue and is waiting for its next message.
By then the key has run its handler, its binding, and whatever those started
(a focus change, a screen push or pop, a dialog's compose and focus) — so the
next key meets the focus and the screen the user saw it meet. Nothing is
dropped, merged or reordered; a burst costs a few event loop turns per key.

:meth:`drained` waits until every key already received has been handled — the
app's quit paths (a signal, a hang-up) call it before saving drafts and exiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import select
from collections import deque
from collections.abc import Awaitable, Callable, Collection, Iterator
from typing import Any

from textual import events
from textual._queue import Queue
from textual.app import App, ScreenStackError
from textual.message_pump import MessagePump

log = logging.getLogger(__name__)

Event = events.Key | events.Paste
Route = Callable[[Event], Awaitable[None]]

DRAIN_LIMIT = 2.0
"""Seconds :meth:`OrderedInput.drained` waits at most (a quit must not hang on input)."""
BURST_FRAME = 0.05
"""Seconds between frames while a burst of keys is being handled (20 a second)."""
SETTLE_LIMIT = 2.0
"""Seconds one key may keep the app busy before the next is routed anyway: a handler
that waits on the network must not freeze the keyboard (none does; this is the fuse)."""


def _busy(pump: MessagePump) -> bool:
    """``pump`` has a message queued, or is handling one (it is not waiting for the next).

    Textual's message queue keeps no count of messages being handled; a pump that is
    waiting for its next message is one whose task waits on the queue's ready event.
    """
    if pump._closing or pump._closed:
        return False
    queue: Queue[Any] = pump._message_queue
    waiting: Collection[object] = getattr(queue.ready_event, "_waiters", None) or ()
    return not queue.empty() or not waiting


async def _behind(pump: MessagePump) -> None:
    """Return once ``pump`` has handled every message queued on it now."""
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def reached() -> None:
        if not done.done():  # the wait may have given up (SETTLE_LIMIT) and cancelled it
            done.set_result(None)

    if pump.call_later(reached):
        await done


class OrderedInput:
    """Owned by the app: its keys and pastes, routed one at a time in arrival order."""

    def __init__(self, app: App[Any], route: Route) -> None:
        self._app = app
        self._route = route
        self._pending: deque[Event] = deque()
        self._arrived = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start routing (on the app's loop, once it runs)."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="ordered input")

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def accept(self, event: Event) -> None:
        """A key or a paste as it arrived from the terminal."""
        self._pending.append(event)
        self._idle.clear()
        self._arrived.set()

    async def _run(self) -> None:
        while True:
            await self._arrived.wait()
            self._arrived.clear()
            with self._repaints_while_keys_wait() as repaint:
                while self._pending:
                    event = self._pending.popleft()
                    try:
                        await self._route(event)
                        await self.settled()
                    except asyncio.CancelledError:
                        raise
                    except Exception as error:  # as Textual does with a handler's error
                        self._app._handle_exception(error)
                    repaint()
            self._idle.set()

    @contextlib.contextmanager
    def _repaints_while_keys_wait(self) -> Iterator[Callable[[], None]]:
        """While more keys wait, repaint at most every :data:`BURST_FRAME` seconds.

        Between two keys of a burst the screen would otherwise be drawn once per key
        (the waits give Textual's refresh its turn): 1,000 keys, 780 frames. A key
        typed alone is drawn at once, as before."""
        app = self._app
        loop = asyncio.get_running_loop()
        batching = False
        since = 0.0

        def end_batch() -> None:
            # Textual's end of a batch prompts only the app. The screen went idle inside
            # the batch without drawing; unprompted it draws at its next message (a
            # cursor blink — none once the burst moved the focus out of the box).
            app._end_batch()
            with contextlib.suppress(ScreenStackError):
                app.screen.check_idle()  # draws what changed

        def repaint() -> None:
            nonlocal batching, since
            if batching and (not self._pending or loop.time() - since >= BURST_FRAME):
                end_batch()
                batching = False
            if self._pending and not batching:
                app._begin_batch()
                batching, since = True, loop.time()

        try:
            yield repaint
        finally:
            if batching:
                end_batch()

    def _pumps(self) -> Iterator[MessagePump]:
        app = self._app
        yield app
        for screen in list(app.screen_stack):
            yield from screen.walk_children(with_self=True)

    async def settled(self) -> None:
        """Wait until no message is queued or being handled anywhere in the app
        (at most :data:`SETTLE_LIMIT`)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SETTLE_LIMIT
        while (busy := next((p for p in self._pumps() if _busy(p)), None)) is not None:
            try:
                await asyncio.wait_for(_behind(busy), deadline - loop.time())
            except TimeoutError:
                log.warning("input: %r still busy after %.0f s", busy, SETTLE_LIMIT)
                return

    async def drained(self, terminal_fd: int | None = None) -> None:
        """Wait (at most :data:`DRAIN_LIMIT`) until every key received so far is handled:
        none waiting to be read on ``terminal_fd``, none queued, the app settled."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + DRAIN_LIMIT
        while loop.time() < deadline and self.running:
            if terminal_fd is not None and _readable(terminal_fd):
                await asyncio.sleep(0.01)  # the driver's thread reads it within a tick
                continue
            try:
                await asyncio.wait_for(self._idle.wait(), deadline - loop.time())
            except TimeoutError:
                return
            await self.settled()
            if self._idle.is_set() and not self._pending:
                return


def _readable(fd: int) -> bool:
    try:
        ready, _, _ = select.select([fd], [], [], 0)
    except (OSError, ValueError):
        return False
    return bool(ready)


def terminal_input_fd() -> int | None:
    """The terminal the app reads keys from (stdin when it is a terminal)."""
    try:
        return 0 if os.isatty(0) else None
    except OSError:
        return None
