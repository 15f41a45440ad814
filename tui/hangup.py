"""Noticing that the terminal is gone when no SIGHUP says so.

On a hang-up the kernel sends SIGHUP only to the terminal's controlling process, the
session leader. From a login shell that is the shell, which passes it on to its jobs;
but a launcher that is the session leader itself may keep it: ``just`` ignores SIGHUP
while a recipe runs (it expects the whole foreground group to get one), so after
``tmux new './run demo'`` or ``ssh HOST ./run chat`` and a closed window, the TUI was
never told. Its input thread spun on the dead terminal for good, and the demo's
server stayed up.

So the program watches its own terminal: a daemon thread blocked in ``poll()`` for a
hang-up alone (keys do not wake it: idle costs nothing) sends this process the SIGHUP
the kernel would have, and the usual handler ends the app with its drafts saved - in
the demo, after stopping the server it started.
"""

from __future__ import annotations

import os
import select
import signal
import threading


def watch(fd: int | None) -> threading.Thread | None:
    """Send this process SIGHUP when the terminal behind ``fd`` hangs up (nothing for
    ``None``: no terminal). Call it once SIGHUP is handled."""
    if fd is None:
        return None
    thread = threading.Thread(target=_wait_for_hangup, args=(fd,), name="hangup", daemon=True)
    thread.start()
    return thread


def _wait_for_hangup(fd: int) -> None:
    poller = select.poll()
    poller.register(fd, 0)  # no event asked for: POLLHUP and POLLERR come anyway
    while True:
        try:
            events = poller.poll()
        except InterruptedError:  # pragma: no cover (Python retries poll itself)
            continue
        for _, mask in events:
            if mask & select.POLLNVAL:
                return  # the descriptor was closed: not a terminal we watch any more
            if mask & (select.POLLHUP | select.POLLERR):
                os.kill(os.getpid(), signal.SIGHUP)
                return
