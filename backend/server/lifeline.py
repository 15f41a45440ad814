"""No process outlives its server: a child asks the kernel to signal it when its parent dies.

On Linux the kernel sends a process a chosen signal when the thread that forked
it ends (``PR_SET_PDEATHSIG``). For granian's workers and the doors that thread is
the server's main thread, so they learn of the main process's death by any
signal, SIGKILL and the OOM killer included - which no handler in the main
process can tell them of.
"""

from __future__ import annotations

import ctypes
import signal
import sys

_PR_SET_PDEATHSIG = 1


def die_with_parent(signum: int = signal.SIGTERM) -> bool:
    """Ask the kernel for ``signum`` when this process's parent (thread) dies; Linux only.

    Whether it was set. The parent may have died already: compare ``os.getppid()``
    with the parent's pid after this call to close that race.
    """
    if sys.platform != "linux":
        return False
    try:
        # the running program's own symbols, libc's among them: no library search (which
        # may run ldconfig) between a fork and an exec
        return bool(ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signum) == 0)
    except (OSError, AttributeError):
        return False
