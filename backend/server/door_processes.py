"""The doors beside the API: ``pairchat-server serve --ssh-port N --web-port M``.

Each door is its own program (``python -m doors ssh|web``, docs/doors.md) and talks
to the API over HTTP, so the server starts it as a child process on the same data
folder (host key, door secret, the sessions' folder) and stops it when it stops
itself. A door that dies on its own is logged, not restarted: the API keeps
serving. On Linux a door also gets SIGTERM if the server is killed outright
(``PR_SET_PDEATHSIG``), so no door outlives its server.

The doors' own caps, timeouts and trusted proxy are ``serve`` flags named after the
door's (``--web-trusted-proxy`` is the web door's ``--trusted-proxy``): see
``DOOR_FLAGS``. They are not API settings, so they live here, not in ``Settings``; a
flag not given leaves the door's default.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import click

from backend.core.settings import Settings
from backend.server.lifeline import die_with_parent

log = logging.getLogger(__name__)
STOP_GRACE = 10.0
"""Seconds a door has to hang up its sessions after SIGTERM before it is killed."""


@dataclass(frozen=True)
class Door:
    kind: str  # "ssh" | "web"
    port: int


# serve flag -> (its door, the door's own flag, click type, help); ``python -m doors``
# checks them again, these refuse a bad value before anything starts.
DOOR_FLAGS: dict[str, tuple[str, str, Any, str]] = {
    "--ssh-max-sessions": (
        "ssh",
        "--max-sessions",
        click.IntRange(min=1),
        "TUI sessions open at once, in all [200]",
    ),
    "--ssh-signin-idle": (
        "ssh",
        "--signin-idle",
        click.FloatRange(min=0),
        "seconds without a key before a claim or sign-in screen ends; 0: never [300]",
    ),
    "--ssh-idle": (
        "ssh",
        "--idle",
        click.FloatRange(min=0),
        "seconds without a key before a signed-in session ends; 0: never [0]",
    ),
    "--web-max-sessions": (
        "web",
        "--max-sessions",
        click.IntRange(min=1),
        "tabs open at once [100]",
    ),
    "--web-tabs-per-address": (
        "web",
        "--tabs-per-address",
        click.IntRange(min=1),
        "tabs one client address may hold [10]",
    ),
    "--web-trusted-proxy": (
        "web",
        "--trusted-proxy",
        str,
        "the address of a TLS proxy in front (e.g. 127.0.0.1) whose X-Forwarded-For "
        "names the visitor; repeatable [none]",
    ),
    "--web-signin-idle": (
        "web",
        "--signin-idle",
        click.FloatRange(min=0),
        "seconds without a key before a sign-in tab ends; 0: never [300]",
    ),
    "--web-idle": (
        "web",
        "--idle",
        click.FloatRange(min=0),
        "seconds without a key before a signed-in tab ends; 0: never [0]",
    ),
}


def _param(flag: str) -> str:
    return flag.lstrip("-").replace("-", "_")


def _ip_addresses(
    _ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
) -> tuple[str, ...]:
    for value in values:
        try:
            ipaddress.ip_address(value)
        except ValueError:
            raise click.BadParameter(f"{value!r} is not an IP address", param=param) from None
    return values


F = TypeVar("F", bound=Callable[..., Any])


def door_options(command: F) -> F:
    """``serve``'s flags for its doors (``DOOR_FLAGS``), each also ``PAIRCHAT_<FLAG>``."""
    for flag, (kind, _own, kind_type, text) in reversed(DOOR_FLAGS.items()):
        env = "PAIRCHAT_" + _param(flag).upper()
        many = flag == "--web-trusted-proxy"
        command = click.option(
            flag,
            type=kind_type,
            multiple=many,
            callback=_ip_addresses if many else None,
            envvar=env,
            help=f"{'SSH' if kind == 'ssh' else 'Browser'} door: {text} [env {env}].",
        )(command)
    return command


@dataclass(frozen=True)
class DoorOptions:
    """The door flags ``serve`` was given: door kind -> the door's own argv for them."""

    given: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> DoorOptions:
        given: dict[str, list[str]] = {}
        for flag, (kind, own, _type, _text) in DOOR_FLAGS.items():
            value = params.get(_param(flag))
            values = value if isinstance(value, tuple) else () if value is None else (value,)
            for one in values:
                given.setdefault(kind, []).extend([own, str(one)])
        return cls({kind: tuple(argv) for kind, argv in given.items()})

    def unused(self, settings: Settings) -> str | None:
        """A door given flags but not started (``web``: --web-* without --web-port), or None."""
        started = {door.kind for door in doors_of(settings)}
        return next((kind for kind in self.given if kind not in started), None)


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


def command(settings: Settings, door: Door, options: DoorOptions | None = None) -> list[str]:
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
    if options is not None:
        argv += options.given.get(door.kind, ())
    return argv


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    die_with_parent(signal.SIGTERM)


@contextlib.contextmanager
def running_doors(
    settings: Settings,
    options: DoorOptions | None = None,
    on_start: Callable[[str, subprocess.Popen[bytes], float], None] | None = None,
) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Start the doors the settings ask for; on leaving, stop them (SIGTERM, then SIGKILL).

    ``on_start(kind, process, when)`` is told of each (the metrics' door start times).
    A door inherits this process's environment: under ``--metrics-port`` the metrics
    folder, where it counts its sessions (``doors/limits.py``)."""
    started: list[subprocess.Popen[bytes]] = []
    try:
        for door in doors_of(settings):
            process = subprocess.Popen(
                command(settings, door, options),
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,
            )
            log.info("%s door starting on port %d (pid %d)", door.kind, door.port, process.pid)
            started.append(process)
            if on_start is not None:
                on_start(door.kind, process, time.time())
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
