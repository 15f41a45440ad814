"""A pseudo-terminal for one session, and the pump between it and the client.

The door keeps the master side; the TUI gets the slave as its controlling
terminal. :class:`PtyPump` moves bytes both ways on the event loop without
threads and with back-pressure: when the client cannot take more output the pump
stops reading the pty (the TUI then blocks on write, as on a slow terminal),
and when the TUI does not read its input the pump asks the client to pause.
A resize is ``TIOCSWINSZ`` on the master: the kernel sends the TUI SIGWINCH.

The slave starts in the modes the TUI would set (:func:`open_pty`), so the keys the
client sends before the TUI has started wait for it whole: a cooked (canonical) pty
would echo them back and keep at most 4,095 bytes of an unfinished line.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import os
import struct
import termios
from collections.abc import Callable
from dataclasses import dataclass

READ_SIZE = 64 * 1024
INPUT_HIGH = 64 * 1024
"""Bytes of client input waiting for the TUI before the client is asked to pause."""


@dataclass(frozen=True)
class Size:
    columns: int = 80
    rows: int = 24
    pixel_width: int = 0
    pixel_height: int = 0

    @classmethod
    def sane(cls, columns: int, rows: int, pixel_width: int = 0, pixel_height: int = 0) -> Size:
        """The client's size, or 80x24 for a zero or absurd one."""
        if not (0 < columns <= 1000 and 0 < rows <= 1000):
            return cls()
        return cls(columns, rows, max(0, pixel_width), max(0, pixel_height))


def open_pty(size: Size) -> tuple[int, int]:
    """(master, slave) of a new pty of ``size``; the master is non-blocking and the slave
    already raw for input (:func:`make_input_raw`), before any input is written."""
    master, slave = os.openpty()
    try:
        make_input_raw(slave)
        set_size(master, size)
        os.set_blocking(master, False)
    except BaseException:
        os.close(master)
        os.close(slave)
        raise
    return master, slave


def make_input_raw(slave: int) -> None:
    """Input as Textual's driver sets it (textual/drivers/linux_driver.py): no line
    editing or its 4,095-byte line limit, no echo, no signals from Ctrl+C/Ctrl+Z, no
    CR-to-NL or XON/XOFF; reads return each byte as it comes. Output keeps its
    processing (NL to CR NL), as under Textual, for anything written before it starts."""
    attrs = termios.tcgetattr(slave)
    attrs[0] &= ~(termios.IXON | termios.IXOFF | termios.ICRNL | termios.INLCR | termios.IGNCR)
    attrs[3] &= ~(termios.ECHO | termios.ECHONL | termios.ICANON | termios.IEXTEN | termios.ISIG)
    attrs[6][termios.VMIN] = 1
    attrs[6][termios.VTIME] = 0
    termios.tcsetattr(slave, termios.TCSANOW, attrs)


def set_size(fd: int, size: Size) -> None:
    packed = struct.pack("HHHH", size.rows, size.columns, size.pixel_width, size.pixel_height)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, packed)


def get_size(fd: int) -> Size:
    rows, columns, pw, ph = struct.unpack("HHHH", fcntl.ioctl(fd, termios.TIOCGWINSZ, bytes(8)))
    return Size(columns, rows, pw, ph)


class PtyPump:
    """Moves bytes between a pty master and a client.

    ``output(data)`` gets what the TUI writes; ``closed()`` is called once, when
    every holder of the slave has closed it (the TUI and its group have ended).
    ``pause_input()``/``resume_input()`` ask the client to stop and go on sending.
    """

    def __init__(
        self,
        master: int,
        *,
        output: Callable[[bytes], None],
        closed: Callable[[], None],
        pause_input: Callable[[], None],
        resume_input: Callable[[], None],
    ) -> None:
        self.master = master
        self._output = output
        self._closed_cb = closed
        self._pause_input = pause_input
        self._resume_input = resume_input
        self._loop = asyncio.get_running_loop()
        self._pending = bytearray()
        self._input_paused = False
        self._reading = False
        self._closed = False
        self.resume_output()

    # TUI -> client ---------------------------------------------------------------------
    def pause_output(self) -> None:
        """The client's window is full: stop reading the TUI's output for now."""
        if self._reading:
            self._loop.remove_reader(self.master)
            self._reading = False

    def resume_output(self) -> None:
        if not self._reading and not self._closed:
            self._loop.add_reader(self.master, self._readable)
            self._reading = True

    def _readable(self) -> None:
        try:
            data = os.read(self.master, READ_SIZE)
        except BlockingIOError:
            return
        except OSError as exc:  # EIO: no process holds the slave any more
            if exc.errno != errno.EIO:
                raise
            data = b""
        if data:
            self._output(data)
        else:
            self._finish()

    # client -> TUI ---------------------------------------------------------------------
    @property
    def input_paused(self) -> bool:
        """The client has been asked to pause until the TUI reads what waits."""
        return self._input_paused

    def feed(self, data: bytes) -> None:
        """Input from the client, written to the TUI in order."""
        if self._closed:
            return
        was_empty = not self._pending
        self._pending += data
        if was_empty:
            self._writable()
        if len(self._pending) > INPUT_HIGH and not self._input_paused:
            self._input_paused = True
            self._pause_input()

    def _writable(self) -> None:
        while self._pending:
            try:
                sent = os.write(self.master, self._pending)
            except BlockingIOError:
                break
            except OSError:
                self._pending.clear()
                break
            del self._pending[:sent]
        if self._pending:
            self._loop.add_writer(self.master, self._writable)
        else:
            self._loop.remove_writer(self.master)
        if self._input_paused and len(self._pending) < INPUT_HIGH // 2:
            self._input_paused = False
            self._resume_input()

    def resize(self, size: Size) -> None:
        if not self._closed:
            set_size(self.master, size)

    # the end ---------------------------------------------------------------------------
    def _finish(self) -> None:
        if self._closed:
            return
        self.close()
        self._closed_cb()

    def close(self) -> None:
        """Stop pumping and close the master (the kernel hangs up the TUI's terminal)."""
        if self._closed:
            return
        self._closed = True
        self.pause_output()
        self._loop.remove_writer(self.master)
        with contextlib.suppress(OSError):
            os.close(self.master)
