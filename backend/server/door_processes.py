"""The doors beside the API: ``pairchat-server serve --ssh-port N --web-port M``.

Each door is its own program (``python -m doors ssh|web``, docs/doors.md) and talks
to the API over HTTP, so the server starts it as a child process on the same data
folder (host key, door secret, the sessions' folder) and stops it when it stops
itself. A door that dies on its own is logged, not restarted: the API keeps
serving. On Linux a door also gets SIGTERM if the server is killed outright
(``PR_SET_PDEATHSIG``), so no door outlives its server.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass

from backend.core.settings import Settings

log = logging.getLogger(__name__)
STOP_GRACE = 10.0
"""Seconds a door has to hang up its sessions after SIGTERM before it is killed."""
_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class Door:
    kind: str  # "ssh" | "web"
    port: int


def doors_of(settings: Settings) -> list[Door]:
    """The doors the settings ask for, in start order."""
    wanted = [("ssh", settings.ssh_port), ("web", settings.web_port)]
    return [Door(kind, port) for kind, port in wanted if port is not None]


def api_url(settings: Settings) -> str:
    """The API as a door on this machine reaches it (a wildcard address is loopback)."""
    host = settings.host
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.port}"


def command(settings: Settings, door: Door) -> list[str]:
    argv = [
        sys.executable,
        "-m",
        "doors",
        door.kind,
        "--host",
        settings.host,
        "--port",
        str(door.port),
        "--data-dir",
        str(settings.data_dir),
        "--api",
        api_url(settings),
    ]
    if door.kind == "web" and settings.web_public_url:
        argv += ["--public-url", settings.web_public_url]
    return argv


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    libc_name = ctypes.util.find_library("c")
    if libc_name is None:
        return
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(libc_name, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


@contextlib.contextmanager
def running_doors(settings: Settings) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Start the doors the settings ask for; on leaving, stop them (SIGTERM, then SIGKILL)."""
    started: list[subprocess.Popen[bytes]] = []
    try:
        for door in doors_of(settings):
            process = subprocess.Popen(
                command(settings, door),
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,
            )
            log.info("%s door starting on port %d (pid %d)", door.kind, door.port, process.pid)
            started.append(process)
        yield started
    finally:
        for process in started:
            if process.poll() is None:
                process.terminate()
        for process in started:
            try:
                process.wait(STOP_GRACE)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
