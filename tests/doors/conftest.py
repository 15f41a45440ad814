"""Fixtures for the doors: the real API, the real door programs, fresh SSH keys, /proc.

Nothing here is mocked: ``api`` is the ``pairchat-server`` program (the
``server_process`` fixture of tests/conftest.py), ``ssh_door``/``web_door``
start ``python -m doors ssh|web`` as users run it, and clients are the real
OpenSSH client (in tmux), asyncssh and Debian's chromium. Processes are found
and checked through /proc: the factory's children are the sessions, and a
session's process group is every process whose pgid is the session's pid.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shlex
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, cast

import asyncssh
import pytest

from tests.support import REPO, ServerProcess, free_port, register, stop_process
from tui.client.blocking import BlockingClient

WAIT = 30.0
"""Seconds a test waits for something that should take well under one."""


def wait_until(predicate: Callable[[], object], what: str, timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for: {what}")
        time.sleep(0.05)


# -- processes, through /proc ---------------------------------------------------------
def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except FileNotFoundError:
        return []
    return [int(p) for p in text.split() if alive(int(p))]


def group_members(pgid: int) -> list[int]:
    """Live processes in process group ``pgid``."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError):
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid and fields[0] != "Z":
                members.append(int(entry.name))
    return members


def gone(pgid: int) -> bool:
    return not group_members(pgid)


def environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    pairs = (item.split(b"=", 1) for item in raw.split(b"\0") if b"=" in item)
    return {k.decode(): v.decode(errors="replace") for k, v in pairs}


def tty_size(pid: int) -> tuple[int, int]:
    """(columns, rows) of the terminal on the process's stdin, as the process sees it."""
    fd = os.open(f"/proc/{pid}/fd/0", os.O_RDONLY | os.O_NOCTTY | os.O_NONBLOCK)
    try:
        rows, columns, _, _ = struct.unpack("HHHH", fcntl.ioctl(fd, termios.TIOCGWINSZ, bytes(8)))
    finally:
        os.close(fd)
    return columns, rows


def pss_kb(pid: int) -> tuple[int, int, int]:
    """(RSS, PSS, USS) of a process in kB, from /proc/PID/smaps_rollup."""
    values: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        name, _, rest = line.partition(":")
        values[name] = int(rest.split()[0])
    return values["Rss"], values["Pss"], values["Private_Clean"] + values["Private_Dirty"]


# -- the door programs -------------------------------------------------------------------
DOOR_SECRET = "a-door-secret-for-tests-only"
FIRST_SCREEN = "This SSH key is new here"
CODE_PLACEHOLDER = "e.g. 7K2Q-9XWD"
"""The claim screen's link-code field, empty."""
"""What a key the API does not know meets: the claim screen (tui/screens/claim.py)."""
"""What the doors show the API (X-Pairchat-Door): given to both sides by environment."""


@dataclass
class Door:
    """``python -m doors KIND …`` in a child process of its own session."""

    kind: str
    data_dir: Path
    api: str
    args: tuple[str, ...] = ()
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[str] | None = None
    banner: list[str] = field(default_factory=list)

    @property
    def log_path(self) -> Path:
        return self.data_dir.parent / f"{self.kind}-door-{self.port}.log"

    def start(self) -> Door:
        cmd = [sys.executable, "-m", "doors", self.kind, "--port", str(self.port)]
        cmd += ["--data-dir", str(self.data_dir), "--api", self.api, *self.args]
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("a")
        self.proc = subprocess.Popen(
            cmd,
            cwd=REPO,
            env={**os.environ, "PAIRCHAT_DOOR_SECRET": DOOR_SECRET},
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            start_new_session=True,
        )
        log.close()
        assert self.proc.stdout is not None
        wanted = "host key" if self.kind == "ssh" else "web door on"
        while not any(wanted in line for line in self.banner):
            line = self.proc.stdout.readline()
            if not line:
                raise AssertionError(f"the {self.kind} door did not start:\n{self.log()}")
            self.banner.append(line.strip())
        return self

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def fingerprint(self) -> str:
        found = re.search(r"host key (SHA256:\S+)", "\n".join(self.banner))
        assert found, self.banner
        return found.group(1)

    @property
    def factory_pid(self) -> int:
        found = re.findall(r"TUI factory ready \(pid (\d+)\)", self.log())
        assert found, self.log()
        return int(found[-1])

    def sessions(self) -> list[int]:
        """Pids of the TUI processes this door runs now."""
        return children(self.factory_pid if self.kind == "ssh" else self.pid)

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        code = stop_process(self.proc, group=True, timeout=20)
        assert self.proc.stdout is not None
        self.proc.stdout.close()
        self.proc = None
        return code


@pytest.fixture
def api(server_process: Callable[..., ServerProcess], tmp_path: Path) -> ServerProcess:
    """The real ``pairchat-server`` on 127.0.0.1 (granian), data in ``tmp_path/data``.

    Its door secret is given, as for a door on another machine: the doors here keep
    their own folder (``pairchat-server --ssh-port`` shares one: test_server_doors.py).
    """
    return server_process(env={"PAIRCHAT_DOOR_SECRET": DOOR_SECRET})


@pytest.fixture
def door_factory(tmp_path: Path) -> Iterator[Callable[..., Door]]:
    """Factory: ``door_factory(kind, api_url, *args, data_dir=None)``; stopped at the end,
    and every TUI process it started is checked to be gone."""
    started: list[Door] = []

    def start(kind: str, api_url: str, *args: str, data_dir: Path | None = None) -> Door:
        door = Door(kind, data_dir or tmp_path / "door", api_url, args).start()
        started.append(door)
        return door

    yield start
    for door in started:
        sessions = door.sessions() if door.proc is not None else []
        factory = door.factory_pid if door.kind == "ssh" and door.proc is not None else None
        door.stop()
        for pid in sessions + ([factory] if factory else []):
            wait_until(partial(gone, pid), f"process group {pid} gone")


@pytest.fixture
def ssh_door(door_factory: Callable[..., Door], api: ServerProcess) -> Door:
    return door_factory("ssh", api.url)


# -- SSH keys and clients -----------------------------------------------------------------
@pytest.fixture
def new_key(tmp_path: Path) -> Callable[[str], Path]:
    """Factory: a fresh ed25519 key made by ``ssh-keygen`` (its private key's path)."""

    def make(name: str = "id_ed25519") -> Path:
        path = tmp_path / "keys" / name
        path.parent.mkdir(mode=0o700, exist_ok=True)
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(path)],
            check=True,
        )
        return path

    return make


class Screen(asyncssh.SSHClientSession[bytes]):
    """An asyncssh client session that keeps what the server sent and how it ended."""

    def __init__(self) -> None:
        self.output = bytearray()
        self.errors = bytearray()
        self.exit_status: int | None = None
        self.closed = False

    def data_received(self, data: bytes, datatype: asyncssh.DataType) -> None:
        if datatype == asyncssh.EXTENDED_DATA_STDERR:
            self.errors += data
        else:
            self.output += data

    def exit_status_received(self, status: int) -> None:
        self.exit_status = status

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True

    def text(self) -> str:
        return plain(bytes(self.output))


def field_focused(raw: bytes | bytearray, placeholder: str) -> bool:
    """Whether ``raw`` terminal output draws the empty input showing ``placeholder``
    with the cursor on it (its first character in a style of its own): focused.

    A key bound to moving the focus (Enter in a form, Tab, Ctrl+L) acts once its
    turn comes; keys sent in the same burst would still land in the field before,
    so a test waits for this between them.
    """
    first, rest = re.escape(placeholder[0].encode()), re.escape(placeholder[1:].encode())
    return re.search(first + rb"(?:\x1b\[[0-9;:]*m)+" + rest, raw) is not None


def password_focused(raw: bytes | bytearray) -> bool:
    """The sign-in form's password field has the focus."""
    return field_focused(raw, "8 characters or more")


def plain(data: bytes) -> str:
    """Terminal output with escape sequences removed (what words reached the screen)."""
    text = data.decode("utf-8", errors="replace")
    text = re.sub(r"\x1b\[[0-9;?<>=]*[ -/]*[@-~]", "", text)
    text = re.sub(r"\x1b\][^\x07\x1b]*(\x07|\x1b\\)", "", text)
    return re.sub(r"\x1b[()#][0-9A-Za-z]|\x1b[=>78c]", "", text)


async def ssh_connect(door: Door | int, key: Path, **options: Any) -> asyncssh.SSHClientConnection:
    """A connection to ``door`` (or a door's port) with ``key`` and nothing of ~/.ssh."""
    return await asyncssh.connect(
        "127.0.0.1",
        door if isinstance(door, int) else door.port,
        username="anyone",
        client_keys=[str(key)],
        known_hosts=None,
        agent_path=None,
        config=None,
        **options,
    )


async def open_tui(
    conn: asyncssh.SSHClientConnection,
    *,
    term: str | None = "xterm-256color",
    size: tuple[int, int] = (80, 24),
    env: Mapping[str, str] | None = None,
    command: str | None = None,
) -> tuple[asyncssh.SSHClientChannel[bytes], Screen]:
    chan, screen = await conn.create_session(
        Screen,
        command,
        term_type=term,
        term_size=size if term else None,
        env=dict(env or {}),  # type: ignore[arg-type]
        encoding=None,
    )
    return chan, cast(Screen, screen)


def users_on(url: str, *names: str) -> dict[str, str]:
    """Register ``names`` on the API: name -> token."""
    return {name: register(url, name) for name in names}


def new_session(door: Door, before: set[int]) -> int:
    """The pid of the one TUI process the door started since ``before`` was taken."""
    found: list[int] = []

    def appeared() -> bool:
        found[:] = sorted(set(door.sessions()) - before)
        return len(found) == 1

    wait_until(appeared, "one new TUI process")
    return found[0]


# -- the OpenSSH client in tmux -----------------------------------------------------------
class Tmux:
    """One tmux server on its own socket; one window, ``pane``."""

    def __init__(self, socket: str) -> None:
        self.socket = socket

    def __call__(self, *args: str) -> str:
        done = subprocess.run(
            ["tmux", "-L", self.socket, *args], capture_output=True, text=True, check=False
        )
        return done.stdout

    def open(self, command: str, columns: int = 80, rows: int = 24) -> None:
        """A session running ``command``; retried while a server killed just before is
        still exiting (its socket took the new session and dropped it with itself)."""
        deadline = time.monotonic() + 10
        while True:
            self("new-session", "-d", "-s", "pane", "-x", str(columns), "-y", str(rows), command)
            if self.has_session():
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"tmux would not start a session for {command!r}")
            time.sleep(0.1)

    def has_session(self) -> bool:
        done = subprocess.run(
            ["tmux", "-L", self.socket, "has-session", "-t", "pane"],
            capture_output=True,
            check=False,
        )
        return done.returncode == 0

    def screen(self) -> str:
        return self("capture-pane", "-p", "-t", "pane")

    def type(self, *keys: str) -> None:
        self("send-keys", "-t", "pane", *keys)

    def flag(self, name: str) -> str:
        return self("display", "-p", "-t", "pane", f"#{{{name}}}").strip()

    def wait_for(self, text: str, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        while text not in (screen := self.screen()):
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} never appeared; the screen was:\n{screen}")
            time.sleep(0.1)
        return screen

    def wait_focused(self, placeholder: str, what: str) -> None:
        """Until the empty field showing ``placeholder`` has the cursor (``field_focused``)."""
        raw = partial(self, "capture-pane", "-p", "-e", "-t", "pane")
        wait_until(lambda: field_focused(raw().encode(), placeholder), what)

    def link_with_code(self, code: str) -> None:
        """On the claim screen: Ctrl+L to the code field, the code, Enter."""
        self.type("C-l")
        self.wait_focused(CODE_PLACEHOLDER, "the code field focused")
        self.type("-l", code)
        self.type("Enter")

    def chat_round_trip(self, me: str, peer: BlockingClient, typed: str, reply: str) -> None:
        """In ``me``'s open chat with ``peer``: ``typed`` is sent and stored, and
        ``peer``'s ``reply`` shows up live."""
        self.type("-l", typed)
        self.type("Enter")
        wait_until(
            lambda: [m.text for m in peer.history(me).messages][-1:] == [typed],
            f"{me}'s message stored",
        )
        peer.send(me, reply)
        self.wait_for(reply)


@pytest.fixture
def tmux(tmp_path: Path) -> Iterator[Tmux]:
    session = Tmux(f"pairchat-doors-{tmp_path.name}")
    yield session
    session("kill-server")


def ssh_options(key: Path) -> list[str]:
    """OpenSSH options for a test: only this key, no known_hosts, no chatter."""
    return [
        "-i",
        str(key),
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
        "-o",
        "LogLevel=ERROR",
    ]


def ssh_command(door: Door, key: Path) -> str:
    """What a user types, with a test's key and no known_hosts; then EXITED and the status."""
    ssh = ["ssh", "-p", str(door.port), *ssh_options(key), "127.0.0.1"]
    return f"{shlex.join(ssh)}; echo EXITED $?; sleep 60"
