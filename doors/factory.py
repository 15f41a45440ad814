"""The session factory: one process that has loaded the TUI forks a TUI per session.

A plain ``python -m tui.door`` costs each session its own copy of Python,
Textual and the app (about 40 MB that no one shares). The factory
(``python -m tui.door --factory SOCKET``) imports all that once, freezes it
(``gc.freeze``: the collector then never writes to those pages) and forks a
child per session: the children share the loaded pages copy-on-write and run the
same ``main()`` as the local program.

The protocol, over a Unix ``SOCK_SEQPACKET`` socket (one message per send):

- the door connects and sends ``{"env": {...}}`` (JSON) with the session's pty
  slave fd attached (``SCM_RIGHTS``);
- the factory forks; the child makes a new session (``setsid``), takes the pty as
  its controlling terminal (``TIOCSCTTY``), puts it on fds 0, 1 and 2, replaces its
  environment and runs ``main()``; the factory answers ``pid N``;
- when the door is done with the session (client gone) it shuts its side of the
  connection: the factory sends the child's process group SIGHUP (the TUI exits
  cleanly), then SIGKILL after a grace period;
- when the child exits the factory answers ``exit N``, kills what is left of its
  process group and closes the connection.

The factory ends (hanging up every session) when its stdin closes: the door that
started it is gone. It runs no threads, so forking is safe.

This module imports neither ``tui`` nor ``backend``: the TUI's side calls
:func:`serve` with its ``main``; the door's side is :class:`SessionFactory`.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import gc
import json
import logging
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import termios
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, NoReturn

log = logging.getLogger("pairchat.door.factory")

GRACE = 3.0
"""Seconds between SIGHUP and SIGKILL for a session whose client went away."""
MAX_MESSAGE = 64 * 1024
READY = b"ready\n"


# -- the factory (runs inside the TUI's program) ---------------------------------------
class _Factory:
    def __init__(self, path: str, run: Callable[[], int], grace: float) -> None:
        self.run = run
        self.grace = grace
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.listener.bind(path)
        os.chmod(path, 0o600)
        self.listener.listen(128)
        self.wake_r, self.wake_w = os.pipe()
        for fd in (self.wake_r, self.wake_w):
            os.set_blocking(fd, False)
        self.by_conn: dict[socket.socket, int] = {}
        self.by_pid: dict[int, socket.socket] = {}
        self.watching: dict[int, socket.socket] = {}
        """Connections whose door has not hung up yet, by fd."""
        self.kill_at: dict[int, float] = {}
        self.stopping = False

    # the loop --------------------------------------------------------------------------
    def loop(self, ready: IO[bytes]) -> int:
        signal.set_wakeup_fd(self.wake_w)
        for number in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(number, self._signalled)
        gc.collect()
        gc.freeze()  # the loaded modules stay untouched by the collector: shared pages
        ready.write(READY)
        ready.flush()
        stdin = sys.stdin.fileno()
        poller = select.poll()
        for fd in (self.listener.fileno(), self.wake_r, stdin):
            poller.register(fd, select.POLLIN)
        while not (self.stopping and not self.by_pid):
            if self.stopping:
                for fd in (self.listener.fileno(), stdin):
                    with contextlib.suppress(KeyError):
                        poller.unregister(fd)
                for conn in list(self.watching.values()):
                    self._door_done(conn, poller)
            for fd, _ in poller.poll(self._timeout()):
                if fd == self.wake_r:
                    with contextlib.suppress(BlockingIOError):
                        os.read(self.wake_r, 4096)
                    self._reap(poller)
                elif fd == stdin:
                    if not os.read(stdin, 4096):
                        self.stopping = True  # the door is gone
                elif fd == self.listener.fileno():
                    self._accept(poller)
                elif (door := self.watching.get(fd)) is not None:
                    self._door_done(door, poller)
            self._kill_overdue()
        return 0

    def _signalled(self, number: int, frame: object) -> None:
        if number != signal.SIGCHLD:
            self.stopping = True

    def _timeout(self) -> int | None:
        """Milliseconds to wait: until the next SIGKILL is due (forever if none)."""
        if self.stopping and not self.kill_at:
            return 200
        if not self.kill_at:
            return None
        return max(0, int((min(self.kill_at.values()) - time.monotonic()) * 1000) + 1)

    # sessions --------------------------------------------------------------------------
    def _accept(self, poller: select.poll) -> None:
        try:
            conn, _ = self.listener.accept()
        except OSError:
            return
        conn.settimeout(5)
        try:
            data, fds, _, _ = socket.recv_fds(conn, MAX_MESSAGE, 1)
            env = json.loads(data)["env"]
            if len(fds) != 1 or not isinstance(env, dict):
                raise ValueError("a session needs one fd and an env")
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("bad session request: %s", exc)
            conn.close()
            return
        tty = fds[0]
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            self._child(tty, {str(k): str(v) for k, v in env.items()}, conn)
        os.close(tty)
        conn.setblocking(False)
        self.by_conn[conn] = pid
        self.by_pid[pid] = conn
        self.watching[conn.fileno()] = conn
        poller.register(conn.fileno(), select.POLLIN)
        self._send(conn, f"pid {pid}")

    def _child(self, tty: int, env: dict[str, str], conn: socket.socket) -> NoReturn:
        code = 1
        try:
            signal.set_wakeup_fd(-1)
            for number in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                signal.signal(number, signal.SIG_DFL)
            for other in [self.listener, conn, *self.by_conn]:
                other.close()
            os.close(self.wake_r)
            os.close(self.wake_w)
            os.setsid()
            fcntl.ioctl(tty, termios.TIOCSCTTY, 0)
            for target in (0, 1, 2):
                os.dup2(tty, target)
            if tty > 2:
                os.close(tty)
            os.environ.clear()
            os.environ.update(env)
            code = self.run()
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 1
        except BaseException:
            traceback.print_exc()
        finally:
            with contextlib.suppress(Exception):
                sys.stdout.flush()
                sys.stderr.flush()
            os._exit(code)

    def _door_done(self, conn: socket.socket, poller: select.poll) -> None:
        """The door shut its side (client gone) or is going away: hang up the session."""
        self._unwatch(conn, poller)
        pid = self.by_conn.get(conn)
        if pid is None or pid in self.kill_at:
            return
        _killpg(pid, signal.SIGHUP)
        self.kill_at[pid] = time.monotonic() + self.grace

    def _unwatch(self, conn: socket.socket, poller: select.poll) -> None:
        if self.watching.pop(conn.fileno(), None) is not None:
            poller.unregister(conn.fileno())

    def _kill_overdue(self) -> None:
        now = time.monotonic()
        for pid, when in list(self.kill_at.items()):
            if when <= now:
                _killpg(pid, signal.SIGKILL)
                self.kill_at[pid] = now + self.grace  # again later if it is still there

    def _reap(self, poller: select.poll) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            _killpg(pid, signal.SIGKILL)  # whatever the session left behind in its group
            self.kill_at.pop(pid, None)
            conn = self.by_pid.pop(pid, None)
            if conn is not None:
                self._unwatch(conn, poller)
                self.by_conn.pop(conn, None)
                self._send(conn, f"exit {os.waitstatus_to_exitcode(status)}")
                conn.close()

    @staticmethod
    def _send(conn: socket.socket, text: str) -> None:
        with contextlib.suppress(OSError):
            conn.send(text.encode("ascii"))


def serve(path: str, run: Callable[[], int], grace: float = GRACE) -> int:
    """Run the factory on the Unix socket ``path``; ``run()`` is one session's program.

    Call it after importing everything the sessions use. Writes ``ready`` on stdout
    once it accepts sessions; ends when stdin closes (or on SIGTERM).
    """
    factory = _Factory(path, run, grace)
    try:
        return factory.loop(sys.stdout.buffer)
    finally:
        factory.listener.close()
        with contextlib.suppress(OSError):
            os.unlink(path)


def _killpg(pgid: int, number: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, number)


# -- the door's side -------------------------------------------------------------------
class FactoryGone(RuntimeError):
    """The factory process is not running (and could not be started again)."""


class FactorySession:
    """One TUI process the factory forked for the door."""

    def __init__(self, conn: socket.socket, pid: int) -> None:
        self.conn = conn
        self.pid = pid
        self._hung_up = False

    async def wait(self) -> int | None:
        """The TUI's exit code once it has ended; None if the factory went away first."""
        loop = asyncio.get_running_loop()
        try:
            data = await loop.sock_recv(self.conn, 64)
        except OSError:
            data = b""
        finally:
            self.conn.close()
        if data.startswith(b"exit "):
            with contextlib.suppress(ValueError):
                return int(data[5:])
        return None

    def hang_up(self) -> None:
        """The client is gone: SIGHUP the session's process group, SIGKILL after a grace."""
        if self._hung_up:
            return
        self._hung_up = True
        try:
            self.conn.shutdown(socket.SHUT_WR)
        except OSError:  # the factory is gone: do it from here
            _killpg(self.pid, signal.SIGHUP)


class SessionFactory:
    """Starts the factory program, restarts it if it died, and asks it for sessions."""

    def __init__(self, command: Sequence[str], env: Mapping[str, str]) -> None:
        self.command = list(command)
        self.env = dict(env)
        self._folder = Path(tempfile.mkdtemp(prefix="pairchat-door-"))
        self.path = str(self._folder / "factory.sock")
        self.process: subprocess.Popen[bytes] | None = None
        self._starting: asyncio.Lock | None = None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    async def start(self) -> None:
        if self._starting is None:
            self._starting = asyncio.Lock()
        async with self._starting:
            if self.process is not None and self.process.poll() is None:
                return
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
            self.process = subprocess.Popen(
                [*self.command, "--factory", self.path],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                env=self.env,
                start_new_session=True,  # a Ctrl+C for the door is not one for the factory
            )
            assert self.process.stdout is not None
            line = await asyncio.to_thread(self.process.stdout.readline)
            if line != READY:
                self.process.kill()
                self.process.wait()
                raise FactoryGone(f"the TUI factory did not start ({line!r})")
            log.info("TUI factory ready (pid %d)", self.process.pid)

    async def open(self, tty: int, env: Mapping[str, str]) -> FactorySession:
        """A TUI on the pty slave ``tty`` (the caller still closes its copy)."""
        for attempt in (1, 2):
            if self.process is None or self.process.poll() is not None:
                await self.start()
            try:
                return await self._open(tty, env)
            except (ConnectionError, FileNotFoundError, FactoryGone):
                if attempt == 2:
                    raise
                log.warning("the TUI factory is gone; starting it again")
                if self.process is not None and self.process.poll() is None:
                    self.process.kill()
                    self.process.wait()
        raise AssertionError("unreachable")

    async def _open(self, tty: int, env: Mapping[str, str]) -> FactorySession:
        loop = asyncio.get_running_loop()
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            conn.setblocking(False)
            await loop.sock_connect(conn, self.path)
            conn.setblocking(True)
            conn.settimeout(5)
            socket.send_fds(conn, [json.dumps({"env": dict(env)}).encode()], [tty])
            conn.setblocking(False)
            reply = await asyncio.wait_for(loop.sock_recv(conn, 64), 10)
        except BaseException:
            conn.close()
            raise
        if not reply.startswith(b"pid "):
            conn.close()
            raise FactoryGone(f"the TUI factory refused a session ({reply!r})")
        return FactorySession(conn, int(reply[4:]))

    def close(self) -> None:
        """Stop the factory (it hangs up its sessions) and remove its socket."""
        if self.process is not None:
            if self.process.stdin is not None:
                with contextlib.suppress(OSError):
                    self.process.stdin.close()
            try:
                self.process.wait(timeout=GRACE * 2 + 1)
            except subprocess.TimeoutExpired:
                _killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
            if self.process.stdout is not None:
                self.process.stdout.close()
        with contextlib.suppress(OSError):
            os.unlink(self.path)
        with contextlib.suppress(OSError):
            self._folder.rmdir()
