"""The server's stop signals, acted on whichever thread the kernel hands them to.

A signal sent to a process goes to any one of its threads that does not block it.
CPython runs a Python handler only on the main thread, and only once that thread
runs bytecode again: granian's main process sleeps in ``Event.wait()`` beside its
worker-watcher threads, so a SIGTERM the kernel gave a watcher thread was never
acted on and the server ran on for good (seen as the demo's server outliving its
killed launcher, ~1 run in 200; made certain with ``kill -TERM`` aimed at a watcher
thread's id, which ``tests/test_operator_safety.py`` does).

CPython's C-level handler also writes the signal's number to the wakeup fd, on
whatever thread caught it. A daemon thread reading that fd acts on every stop
signal at once. The Python handler itself does nothing: it exists so that the C
handler catches the signal, and work done in it would run on the main thread at
any bytecode, where taking a lock that thread already holds (granian's
``Event.set`` while its ``Event.wait`` holds the condition's lock) never returns.
``on_stop`` runs on the reading thread; it may run more than once.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable, Iterable
from types import FrameType


class StopSignals:
    """Install once, from the main thread, in the process that must stop."""

    def __init__(self, signals: Iterable[int], on_stop: Callable[[int], None]) -> None:
        self.signals = frozenset(int(number) for number in signals)
        self.on_stop = on_stop
        self._read = self._write = -1

    def install(self) -> None:
        self._read, self._write = os.pipe()  # not inherited by exec'd children
        os.set_blocking(self._write, False)  # a full pipe drops a byte, never blocks a handler
        for number in self.signals:
            signal.signal(number, self._handled)
        signal.set_wakeup_fd(self._write, warn_on_full_buffer=False)
        # A forked child (a granian worker) installs its own handlers: it must not
        # write its signals into this process's pipe meanwhile.
        os.register_at_fork(after_in_child=self._forget_in_child)
        threading.Thread(target=self._watch, name="stop-signals", daemon=True).start()

    def _handled(self, signum: int, frame: FrameType | None) -> None:
        """Nothing: the C handler has written ``signum`` to the wakeup fd already."""

    def _watch(self) -> None:
        while True:
            try:
                caught = os.read(self._read, 64)  # EINTR is retried by Python (PEP 475)
            except OSError:
                return
            if not caught:
                return
            for number in caught:
                if number in self.signals:
                    self.on_stop(number)

    def _forget_in_child(self) -> None:
        with contextlib.suppress(ValueError, OSError):  # ValueError: not the main thread
            signal.set_wakeup_fd(-1)
        for fd in (self._read, self._write):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._read = self._write = -1  # a later fork of this child has nothing to close
