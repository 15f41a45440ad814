"""A stand-in for the TUI behind the session factory: ``python -m tests.doors.fake_session
--factory SOCKET`` serves sessions that report what they see, then behave as told.

Each session writes one line on its terminal, ``sid=… pgrp=… fg=… tty=… hello=…``
(its session, process group, the terminal's foreground group, the terminal's
name and ``$HELLO``), starts ``sleep`` as a child in its own process group, and
then, by ``$FAKE``: ``exit:N`` ends with status N; ``ignore-hup`` ignores SIGHUP
(the child too) and waits; anything else waits until hung up.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from doors.factory import serve


def session() -> int:
    mode = os.environ.get("FAKE", "")
    if mode == "ignore-hup":
        signal.signal(signal.SIGHUP, signal.SIG_IGN)  # inherited by the sleep below
    pid = os.getpid()
    line = (
        f"sid={os.getsid(0) == pid} pgrp={os.getpgrp() == pid} fg={os.tcgetpgrp(0) == pid} "
        f"tty={os.ttyname(0)} hello={os.environ.get('HELLO')}\n"
    )
    os.write(1, line.encode())
    subprocess.Popen(["sleep", "300"])
    if mode.startswith("exit:"):
        return int(mode[5:])
    while True:  # until a signal ends it (SIGHUP ignored in ignore-hup mode)
        signal.pause()


if __name__ == "__main__":
    sys.exit(serve(sys.argv[2], session, grace=0.5))
