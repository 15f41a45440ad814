"""A script command's stdin over SSH (``… | ssh HOST send bob``): every byte the client
sends reaches the command, in order, and the door never holds more than a bound of it.

The client may send before the command's process exists (the door first asks the API
who the key is) and faster than the command reads. Either way the channel is asked to
pause (SSH flow control: the client's ``ssh`` stops reading its own stdin, as a
writer to a full pipe waits) instead of anything being dropped. The client's EOF
closes the command's stdin after its last byte. ``history`` and ``tail`` never read
their stdin but hold it open until they exit: what the client sends meanwhile fills
the pipe and then this queue, and past that the client is paused (a ``tail`` that
runs for hours holds a client that keeps sending). Once the command has exited (its
stdin is then closed) what still comes is nobody's to read, and is let through and
discarded so the client is never held up by it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable

INPUT_HIGH = 64 * 1024
"""Bytes waiting for the command before the client is asked to pause."""
INPUT_LOW = INPUT_HIGH // 2
"""Bytes waiting below which a paused client is asked to go on."""


class CommandInput:
    """What the client sends, queued until :meth:`start` gives it the command's stdin.

    ``pause()``/``resume()`` ask the client to stop and go on sending (the channel's
    ``pause_reading``/``resume_reading``)."""

    def __init__(self, *, pause: Callable[[], None], resume: Callable[[], None]) -> None:
        self._pause = pause
        self._resume = resume
        self._chunks: deque[bytes] = deque()
        self._waiting = 0
        self._paused = False
        self._ended = False
        self._unread = False
        self._more = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def waiting(self) -> int:
        """Bytes received and not yet written to the command."""
        return self._waiting

    def feed(self, data: bytes) -> None:
        """Bytes from the client, after all those fed before."""
        if self._ended or self._unread or not data:
            return
        self._chunks.append(data)
        self._waiting += len(data)
        self._more.set()
        if self._waiting > INPUT_HIGH and not self._paused:
            self._paused = True
            self._pause()

    def end(self) -> None:
        """The client's EOF: the command's stdin is closed after what came before."""
        self._ended = True
        self._more.set()

    def start(self, stdin: asyncio.StreamWriter) -> None:
        """The command exists: write everything to ``stdin``, from the first byte."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._write(stdin))

    def close(self) -> None:
        """The session is over: stop writing, and hold nothing back from the client."""
        if self._task is not None:
            self._task.cancel()
        self._discard()

    async def _write(self, stdin: asyncio.StreamWriter) -> None:
        try:
            while True:
                while self._chunks:
                    data = self._chunks.popleft()
                    stdin.write(data)
                    await stdin.drain()
                    self._waiting -= len(data)
                    self._go_on()
                if self._ended:
                    break
                self._more.clear()
                await self._more.wait()
        except ConnectionError:  # the command closed its stdin, or ended
            self._discard()
        finally:
            with contextlib.suppress(ConnectionError, RuntimeError):
                stdin.close()

    def _go_on(self) -> None:
        if self._paused and self._waiting <= INPUT_LOW:
            self._paused = False
            self._resume()

    def _discard(self) -> None:
        self._unread = True
        self._chunks.clear()
        self._waiting = 0
        self._go_on()
