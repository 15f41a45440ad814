"""How many clients a worker holds, decided once at start from the open-files limit.

Every held client — an event stream, a long-poll, an idle keep-alive connection —
is one open socket, and an idle one costs no thread (``backend/server/front.py``).
So the real ceiling is the process's open-files limit, not a thread count. At
start ``pairchat-server`` raises its soft limit to the hard limit (no ``ulimit``
step, no privilege needed), keeps room for its own files — three per open
conversation (the file, its WAL and shared memory), and 256 for the accounts
file, logs, pipes and the doors' sockets — and gives the rest to connections:

    connections = open files - (3 x max_open_conversations + 256), at most MAX_CONNECTIONS
    held        = connections - THREAD_RESERVE   (streams and long-polls at once)

With this machine's hard limit of 20,000 that is 18,208 connections and 18,144 held
clients per worker; with systemd's default (524,288) it is ``MAX_CONNECTIONS``.
``--max-connections``/``--max-waiters`` (or the old ``--threads``) still set them by hand.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from backend.core.settings import THREAD_RESERVE, Settings

log = logging.getLogger("pairchat")
ROOM_PER_CONVERSATION = 3
ROOM_BESIDES = 256
MAX_CONNECTIONS = 65_536
"""A ceiling even when the hard limit is far higher: ~20 KiB each is 1.3 GiB held."""
FALLBACK_OPEN_FILES = 1024
"""What to plan for where the limit cannot be read (not POSIX)."""


@dataclass(frozen=True)
class Capacity:
    open_files: int  # the soft limit after raising it
    connections: int  # per worker
    held: int  # streams and long-polls at once, per worker


def raise_open_files() -> int:
    """Raise the soft open-files limit to the hard one; the soft limit now in force."""
    try:
        import resource
    except ImportError:
        return FALLBACK_OPEN_FILES
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):  # a limit some sandboxes refuse: keep the soft one
            pass
    return MAX_CONNECTIONS * 2 if soft == resource.RLIM_INFINITY else soft


def plan(settings: Settings, open_files: int) -> Capacity:
    """The connections and held clients ``settings`` ask for, within ``open_files``."""
    room = ROOM_PER_CONVERSATION * settings.max_open_conversations + ROOM_BESIDES
    fits = max(THREAD_RESERVE * 2, min(open_files - room, MAX_CONNECTIONS))
    connections = fits if settings.max_connections is None else min(settings.max_connections, fits)
    if settings.max_waiters is not None:
        held = settings.max_waiters
    elif settings.threads is not None:
        held = settings.threads - THREAD_RESERVE
    else:
        held = connections - THREAD_RESERVE
    return Capacity(open_files, connections, held)


def apply(settings: Settings) -> Settings:
    """``settings`` with this process's capacity filled in (and the limit raised), logged."""
    capacity = plan(settings, raise_open_files())
    log.info(
        "holding up to %d clients per worker (%d connections; open-files limit %d)",
        capacity.held,
        capacity.connections,
        capacity.open_files,
    )
    if capacity.held > capacity.connections - THREAD_RESERVE:
        log.warning(
            "--max-waiters %d is more than the %d connections leave room for: the "
            "connection limit decides first",
            capacity.held,
            capacity.connections,
        )
    return settings.replace(max_connections=capacity.connections, max_waiters=capacity.held)
