"""The SSH door: every SSH session is the pairchat TUI in its own pseudo-terminal.

``ssh -p 2222 host`` authenticates with the client's public key only (any key is
accepted: the key *is* the account; the user name typed in ``ssh`` is ignored),
asks the API who that key is (:mod:`doors.identity`), opens a pty of the
client's size and has the session factory start ``python -m tui.door`` on it
(:mod:`doors.factory`) with TERM from the pty request and COLORTERM=truecolor
when the client says it draws 24-bit colour (:mod:`doors.session_env`).

Besides the TUI, exactly three commands, for scripts (never a shell: the command line
is split like a shell's words and nothing else): ``ssh -p 2222 host send bob "hi"``
(the text, or stdin until EOF), ``ssh … history bob [--limit N] [--json]`` and
``ssh … tail [bob] [--json]`` — the ``pairchat`` program's own (tui/scripting.py),
run as ``python -m tui.door`` with pipes instead of a pty and the key's account. Any
other command gets one line and exit status 1, as does a session without a pty.
The one subsystem is ``sftp`` (and so ``scp``): the key's account's files as a virtual
tree (:mod:`doors.sftp`), nothing of the door's own file system; no other subsystem,
no port forwarding, no agent or X11 forwarding. A session channel is a
:class:`DoorSession` that hands its requests to a :class:`TuiSession` until a
``subsystem sftp`` request makes it an :class:`SftpSession`. Limits
(:mod:`doors.limits`): sessions per key, per address and in all (an SFTP session
counts as one); connections per address; a login grace time; keepalives. When the
client goes (disconnect, channel close, EOF) the session's whole process group is hung
up, then killed after a grace period; an SFTP session's token is revoked and its
unsent uploads dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shlex
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import asyncssh
import httpx
from asyncssh.channel import SSHChannel
from asyncssh.sftp import MIN_SFTP_VERSION
from asyncssh.stream import SSHServerStreamSession

from doors.command_input import CommandInput
from doors.factory import GRACE, FactorySession, SessionFactory
from doors.file_api import FileApi
from doors.hostkey import fingerprint, load_host_key
from doors.identity import TIMEOUT, DoorApi, Identity, IdentityUnavailable, KeyRefused
from doors.limits import Counts, Held, Limits
from doors.pty import PtyPump, Size, open_pty
from doors.secret import CLIENT_HEADER, client_address, client_proof
from doors.session_env import session_env, wants_truecolor
from doors.sftp import SPOOL_BYTES, PairchatSftp, SpoolBudget, clear_spool, max_file_bytes
from protocol.door_proof import PROOF_HEADER

log = logging.getLogger("pairchat.door.ssh")

EXIT_REFUSED = 1
END_GRACE = 1.0
"""Seconds to let the pty drain after the TUI exited, if something still holds it."""
SFTP_END_GRACE = 30.0
"""Seconds a file the client closed just before it went may still take to be sent,
before the session's token is revoked."""
EARLY_INPUT = 4096
"""Bytes typed before the TUI's pty exists that are kept for it before the client is
asked to pause (never dropped)."""
SCRIPT_COMMANDS = ("send", "history", "tail")
REQUEST_ID_HEADER = "X-Request-Id"
"""The header that ties a session's API calls to its id (as tui/door.py sends it)."""
COMMAND_VARIABLE = "PAIRCHAT_DOOR_COMMAND"
"""The script command (a JSON list of words) for ``python -m tui.door`` to run."""


def script_command(line: str) -> list[str] | None:
    """``line`` split into words if it is one of ``SCRIPT_COMMANDS``, else None."""
    try:
        argv = shlex.split(line)
    except ValueError:
        return None
    return argv if argv and argv[0] in SCRIPT_COMMANDS else None


@dataclass(frozen=True)
class SshDoorConfig:
    data_dir: Path
    """Host key, door secret and the sessions' folder (``doors/tui``) live here."""
    api: str
    """The API the sessions talk to, e.g. http://127.0.0.1:5000."""
    port: int = 2222
    host: str = "127.0.0.1"
    public_host: str | None = None
    """The name users type after ``ssh`` (for messages); default: the address reached."""
    limits: Limits = field(default_factory=Limits)
    max_file_bytes: int = field(default_factory=lambda: max_file_bytes(os.environ))
    """Bytes of one file sent over SFTP (the API's ``PAIRCHAT_MAX_FILE_BYTES``)."""

    @property
    def sessions_dir(self) -> Path:
        return self.data_dir / "doors" / "tui"

    @property
    def spool_dir(self) -> Path:
        """Files being sent over SFTP, unlinked as soon as made (:mod:`doors.sftp`)."""
        return self.data_dir / "doors" / "spool"


class SshDoor:
    """The door's shared state: limits, the factory, the API client, open sessions."""

    def __init__(self, config: SshDoorConfig, factory: SessionFactory, secret: str) -> None:
        self.config = config
        self.factory = factory
        self.api = DoorApi(config.api, secret)
        self.secret = secret
        self.http = httpx.AsyncClient(timeout=TIMEOUT)
        self.counts = Counts()
        self.sessions: set[TuiSession | SftpSession] = set()
        self.host_key = load_host_key(config.data_dir)
        self.acceptor: asyncssh.SSHAcceptor | None = None
        config.sessions_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        clear_spool(config.spool_dir)
        self.spool = SpoolBudget(max(SPOOL_BYTES, config.max_file_bytes))
        """What the files being sent over SFTP take of the spool folder's disk."""

    def take_session(self, connection: DoorConnection) -> Held | None:
        """One session's place in the limits (per key, per address, in all), or None."""
        limits = self.config.limits
        return self.counts.take(
            {
                f"key:{connection.public_key or '?'}": limits.sessions_per_key,
                f"sessions-from:{connection.address}": limits.sessions_per_address,
                "sessions": limits.sessions,
            }
        )

    def why_full(self, connection: DoorConnection) -> str:
        """The sentence for a session ``take_session`` refused."""
        counts, limits = self.counts, self.config.limits
        if counts.count(f"key:{connection.public_key or '?'}") >= limits.sessions_per_key:
            return (
                f"this key already has {limits.sessions_per_key} pairchat sessions open; "
                "close one and try again"
            )
        if counts.count(f"sessions-from:{connection.address}") >= limits.sessions_per_address:
            return "too many pairchat sessions from your address; try again later"
        return "pairchat is full right now; try again in a minute"

    def visitor_headers(self, address: str) -> dict[str, str]:
        """What the API needs to count a request as from the SSH client's address."""
        if address == "?":
            return {}
        return {CLIENT_HEADER: address, PROOF_HEADER: client_proof(self.secret, address)}

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.host_key)

    async def start(self) -> None:
        await self.factory.start()
        limits = self.config.limits
        self.acceptor = await asyncssh.create_server(
            lambda: DoorConnection(self),
            self.config.host,
            self.config.port,
            server_host_keys=[self.host_key],
            encoding=None,
            line_editor=False,
            allow_pty=True,
            agent_forwarding=False,
            x11_forwarding=False,
            allow_scp=False,
            sftp_factory=None,
            public_key_auth=True,
            password_auth=False,
            kbdint_auth=False,
            host_based_auth=False,
            gss_auth=False,
            gss_kex=False,
            login_timeout=limits.login_timeout,
            keepalive_interval=limits.keepalive_interval,
            keepalive_count_max=3,
            reuse_address=True,
        )

    async def close(self) -> None:
        """Stop listening, hang up every session, stop the factory."""
        if self.acceptor is not None:
            self.acceptor.close()
            await self.acceptor.wait_closed()
        tasks = [s.task for s in self.sessions if s.task is not None]
        for session in list(self.sessions):
            session.hang_up()
        if tasks:  # each ends once its TUI has (and has revoked its token)
            await asyncio.wait(tasks, timeout=GRACE * 2 + 2)
        await self.http.aclose()
        await asyncio.to_thread(self.factory.close)


class DoorConnection(asyncssh.SSHServer):
    """One SSH connection: its address, and the public key it signed in with."""

    def __init__(self, door: SshDoor) -> None:
        self.door = door
        self.conn: asyncssh.SSHServerConnection | None = None
        self.address = "?"
        self.public_key: str | None = None
        self.key_fingerprint = ""
        self.held: Held | None = None

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self.conn = conn
        peer = conn.get_extra_info("peername")
        self.address = client_address(str(peer[0])) if peer else "?"
        cap = {f"addr:{self.address}": self.door.config.limits.connections_per_address}
        self.held = self.door.counts.take(cap)
        if self.held is None:
            log.warning("refused a connection from %s: too many from that address", self.address)
            asyncio.get_running_loop().call_soon(conn.abort)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.held is not None:
            self.held.release()

    def begin_auth(self, username: str) -> bool:
        return True  # every connection authenticates, with a key

    def public_key_auth_supported(self) -> bool:
        return True

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        # asyncssh calls this for every key offered, then verifies the signature of
        # the one the client signs with, right after this call for that key, in the
        # same request; a success is only sent for the request in progress, so the
        # key recorded last when auth succeeds is the key that signed.
        text = bytes(key.export_public_key("openssh")).decode("ascii")
        self.public_key = " ".join(text.split()[:2])
        self.key_fingerprint = str(key.get_fingerprint("sha256"))
        return True

    def auth_completed(self) -> None:
        log.info("%s signed in with key %s", self.address, self.key_fingerprint)

    def session_requested(self) -> DoorSession:
        return DoorSession(self.door, self)


class DoorSession(asyncssh.SSHServerSession[bytes]):
    """A session channel: a :class:`TuiSession` (the TUI or a script command), or, once
    the client asks for the ``sftp`` subsystem, an :class:`SftpSession`.

    asyncssh picks a channel's session object before the client says what it wants,
    so this one hands every event to the one it became."""

    def __init__(self, door: SshDoor, connection: DoorConnection) -> None:
        self.door = door
        self.connection = connection
        self.chan: asyncssh.SSHServerChannel[bytes] | None = None
        self.inner: TuiSession | SftpSession = TuiSession(door, connection)

    def connection_made(self, chan: asyncssh.SSHServerChannel[bytes]) -> None:
        self.chan = chan
        self.inner.connection_made(chan)

    def subsystem_requested(self, subsystem: str) -> bool:
        if subsystem != "sftp" or self.chan is None:
            log.info("%s asked for subsystem %r: refused", self.connection.address, subsystem)
            return False
        self.inner = SftpSession(self.door, self.connection)
        self.inner.connection_made(self.chan)
        return self.inner.subsystem_requested(subsystem)

    def pty_requested(
        self, term_type: str, term_size: tuple[int, int, int, int], term_modes: object
    ) -> bool:
        return self.inner.pty_requested(term_type, term_size, term_modes)  # type: ignore[arg-type]

    def shell_requested(self) -> bool:
        return self.inner.shell_requested()

    def exec_requested(self, command: str) -> bool:
        return self.inner.exec_requested(command)

    def session_started(self) -> None:
        self.inner.session_started()

    def data_received(self, data: bytes, datatype: asyncssh.DataType) -> None:
        self.inner.data_received(data, datatype)

    def eof_received(self) -> bool:
        return self.inner.eof_received()

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()

    def terminal_size_changed(self, width: int, height: int, pixwidth: int, pixheight: int) -> None:
        self.inner.terminal_size_changed(width, height, pixwidth, pixheight)

    def break_received(self, msec: int) -> bool:
        return self.inner.break_received(msec)

    def signal_received(self, signal: str) -> None:
        self.inner.signal_received(signal)

    def soft_eof_received(self) -> None:
        self.inner.soft_eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self.inner.connection_lost(exc)


class Account(NamedTuple):
    """A key that has an account: who, the session's token, and the identity it came in."""

    username: str
    token: str
    identity: Identity


class AccountChannel:
    """What the TUI, command and SFTP session channels share: their place in the
    limits, the key's account, and a refusal in one line on stderr."""

    door: SshDoor
    connection: DoorConnection
    chan: asyncssh.SSHServerChannel[bytes] | None
    held: Held | None
    ended = False

    def _newline(self) -> str:
        return "\n"

    def _refuse(self, line: str) -> None:
        if self.ended or self.chan is None:
            return
        self.ended = True
        with contextlib.suppress(Exception):
            self.chan.write_stderr(f"{line}{self._newline()}".encode())
            self.chan.exit(EXIT_REFUSED)

    def _release(self) -> None:
        self.door.sessions.discard(self)
        if self.held is not None:
            self.held.release()
            self.held = None

    async def _identity(self) -> Identity | None:
        """Who the key is (an account, or not yet one), or None: refused with a sentence."""
        try:
            return await self.door.api.who_is(
                self.connection.public_key or "",
                self.door.http,
                visitor=None if self.connection.address == "?" else self.connection.address,
            )
        except IdentityUnavailable as exc:
            log.error("%s: %s", self.connection.address, exc)
            self._refuse("pairchat cannot reach its server right now; try again in a minute")
        except KeyRefused as exc:
            log.info("%s: %s", self.connection.address, exc)
            self._refuse(str(exc))
        return None

    async def _account(self) -> Account | None:
        """The key's account and its session token, or None: refused with a sentence."""
        identity = await self._identity()
        if identity is None:
            return None
        if not (identity.username and identity.token):
            self._refuse(
                "this key has no account yet: sign in once with "
                f"ssh -t -p {self._port()} {self._host()}"
            )
            return None
        return Account(identity.username, identity.token, identity)

    def _port(self) -> int:
        return self.door.config.port

    def _host(self) -> str:
        if self.door.config.public_host:
            return self.door.config.public_host
        conn = self.connection.conn
        local = conn.get_extra_info("sockname") if conn is not None else None
        return str(local[0]) if local else "HOST"


class TuiSession(AccountChannel, asyncssh.SSHServerSession[bytes]):
    """One SSH session channel: the TUI in a pty, or a one-line refusal."""

    def __init__(self, door: SshDoor, connection: DoorConnection) -> None:
        self.door = door
        self.connection = connection
        self.chan: asyncssh.SSHServerChannel[bytes] | None = None
        self.term: str | None = None
        self.size = Size()
        self.command: str | None = None
        self.held: Held | None = None
        self.pump: PtyPump | None = None
        self.process: FactorySession | None = None
        self.task: asyncio.Task[None] | None = None
        self.early_input = bytearray()
        """What the client typed before the TUI's pty exists (the channel paused past
        ``EARLY_INPUT``)."""
        self.early_paused = False
        self.pty_closed = asyncio.Event()
        self.ended = False
        self.command_process: asyncio.subprocess.Process | None = None
        self.command_input: CommandInput | None = None
        """A script command's stdin: everything the client sends, until it ends."""

    # requests --------------------------------------------------------------------------
    def connection_made(self, chan: asyncssh.SSHServerChannel[bytes]) -> None:
        self.chan = chan

    def pty_requested(
        self, term_type: str, term_size: tuple[int, int, int, int], term_modes: object
    ) -> bool:
        self.term = term_type or "xterm-256color"
        self.size = Size.sane(*term_size)
        return True

    def shell_requested(self) -> bool:
        return True

    def exec_requested(self, command: str) -> bool:
        self.command = command  # refused in session_started, with a sentence
        return True

    def break_received(self, msec: int) -> bool:
        return False

    # the session -----------------------------------------------------------------------
    def session_started(self) -> None:
        argv = script_command(self.command) if self.command is not None else None
        if (self.command is not None and argv is None) or (argv is None and self.term is None):
            what = f"command {self.command!r}" if self.command is not None else "no pty"
            log.info("%s: refused (%s)", self.connection.address, what)
            self._refuse(
                f"pairchat runs its TUI (ssh -t -p {self._port()} {self._host()}) or one of: "
                + ", ".join(SCRIPT_COMMANDS)
            )
            return
        self.held = self.door.take_session(self.connection)
        if self.held is None:
            self._refuse(self.door.why_full(self.connection))
            return
        self.door.sessions.add(self)
        if argv is not None and self.chan is not None:
            self.command_input = CommandInput(
                pause=self.chan.pause_reading, resume=self.chan.resume_reading
            )
            if self.early_input:
                self.command_input.feed(bytes(self.early_input))
                self.early_input.clear()
            if self.early_paused:  # the command's input pauses the client from now on
                self.early_paused = False
                self.chan.resume_reading()
        run = self._run() if argv is None else self._run_command(argv)
        self.task = asyncio.get_running_loop().create_task(run)

    async def _run(self) -> None:
        chan = self.chan
        assert chan is not None
        status = EXIT_REFUSED
        try:
            identity = await self._identity()
            if identity is None:
                return
            master, slave = open_pty(self.size)
            try:
                env = session_env(
                    api=self.door.config.api,
                    config_dir=self.door.config.sessions_dir,
                    term=self.term or "xterm-256color",
                    truecolor=wants_truecolor(self.term or "", chan.get_environment()),
                    identity=identity,
                    visitor=self._visitor(),
                    signin_idle=self.door.config.limits.signin_idle,
                    idle=self.door.config.limits.idle,
                )
                self.pump = PtyPump(
                    master,
                    output=self._output,
                    closed=self.pty_closed.set,
                    pause_input=chan.pause_reading,
                    resume_input=chan.resume_reading,
                )
                self._feed_early_input(self.pump)
                self.process = await self.door.factory.open(slave, env)
            except BaseException:
                if self.pump is not None:
                    self.pump.close()
                else:
                    os.close(master)
                raise
            finally:
                os.close(slave)
            log.info(
                "%s: session started (pid %d, %s, %dx%d, user %s)",
                self.connection.address,
                self.process.pid,
                self.term,
                self.size.columns,
                self.size.rows,
                identity.username or ("(new key)" if identity.ticket else "(sign-in)"),
            )
            try:
                code = await self.process.wait()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.pty_closed.wait(), END_GRACE)
            finally:
                if identity.token:
                    await asyncio.shield(self.door.api.revoke(identity.token, self.door.http))
            status = 0 if code is None else code
            log.info(
                "%s: session ended (pid %d, exit %s)",
                self.connection.address,
                self.process.pid,
                code,
            )
        except Exception:
            log.exception("%s: the session failed", self.connection.address)
            self._refuse("pairchat could not start a session; try again in a minute")
        finally:
            self._finish(status)

    async def _run_command(self, argv: list[str]) -> None:
        """A script command: ``python -m tui.door`` on pipes, as the key's account."""
        chan = self.chan
        assert chan is not None
        status = EXIT_REFUSED
        try:
            account = await self._account()
            if account is None:
                return
            env = {
                **self.door.factory.env,
                **session_env(
                    api=self.door.config.api,
                    config_dir=self.door.config.sessions_dir,
                    identity=account.identity,
                    visitor=self._visitor(),
                ),
                COMMAND_VARIABLE: json.dumps(argv),
            }
            try:
                self.command_process = await asyncio.create_subprocess_exec(
                    *self.door.factory.command,
                    stdin=asyncio.subprocess.PIPE,
                    stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.PIPE,
                    env=env,
                    start_new_session=True,
                )
                process = self.command_process
                assert process.stdin is not None and self.command_input is not None
                self.command_input.start(process.stdin)
                log.info(
                    "%s: command %s started (pid %d, user %s)",
                    self.connection.address,
                    argv[0],
                    process.pid,
                    account.username,
                )
                await asyncio.gather(
                    self._copy(process.stdout, self._output),
                    self._copy(process.stderr, self._output_stderr),
                )
                status = await process.wait()
            finally:
                await asyncio.shield(self.door.api.revoke(account.token, self.door.http))
            log.info("%s: command %s ended (exit %s)", self.connection.address, argv[0], status)
        except Exception:
            log.exception("%s: the command failed", self.connection.address)
            self._refuse("pairchat could not run the command; try again in a minute")
        finally:
            self._finish(status)

    async def _copy(
        self, source: asyncio.StreamReader | None, write: Callable[[bytes], None]
    ) -> None:
        if source is None:
            return
        while chunk := await source.read(65536):
            write(chunk.replace(b"\n", b"\r\n") if self.term is not None else chunk)

    def _output_stderr(self, data: bytes) -> None:
        if self.chan is None or self.ended:
            return
        with contextlib.suppress(BrokenPipeError):
            self.chan.write_stderr(data)

    def _finish(self, status: int) -> None:
        if self.pump is not None:
            self.pump.close()
        if self.command_input is not None:
            self.command_input.close()
        self._release()
        if not self.ended and self.chan is not None:
            self.ended = True
            with contextlib.suppress(Exception):
                self.chan.exit(max(0, min(255, status)))

    def _newline(self) -> str:
        return "\r\n" if self.term is not None else "\n"

    # data ------------------------------------------------------------------------------
    def _output(self, data: bytes) -> None:
        if self.chan is None or self.ended:
            return
        try:
            self.chan.write(data)
        except BrokenPipeError:
            # The client closed the channel in this same turn of the loop: asyncssh
            # tells us (connection_lost) on the next. It is gone: no traceback, the
            # one line is "session ended".
            self.ended = True
            self.hang_up()

    def data_received(self, data: bytes, datatype: asyncssh.DataType) -> None:
        if self.command_input is not None:
            self.command_input.feed(data)
        elif self.pump is not None:
            self.pump.feed(data)
        else:  # no pty yet: kept, and past EARLY_INPUT the client waits for it
            self.early_input += data
            if len(self.early_input) >= EARLY_INPUT and not self.early_paused:
                self.early_paused = True
                if self.chan is not None:
                    self.chan.pause_reading()

    def _feed_early_input(self, pump: PtyPump) -> None:
        """What came before the pty existed, to it first; then the client goes on."""
        if self.early_input:
            pump.feed(bytes(self.early_input))
            self.early_input.clear()
        if self.early_paused:
            self.early_paused = False
            if self.chan is not None and not pump.input_paused:
                self.chan.resume_reading()

    def terminal_size_changed(self, width: int, height: int, pixwidth: int, pixheight: int) -> None:
        self.size = Size.sane(width, height, pixwidth, pixheight)
        if self.pump is not None:
            self.pump.resize(self.size)

    def pause_writing(self) -> None:
        if self.pump is not None:
            self.pump.pause_output()

    def resume_writing(self) -> None:
        if self.pump is not None:
            self.pump.resume_output()

    # the end ---------------------------------------------------------------------------
    def eof_received(self) -> bool:
        if self.command is not None:  # a script command: the end of its stdin
            if self.command_input is not None:
                self.command_input.end()
            return True
        self.hang_up()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.ended = True
        self.hang_up()

    def hang_up(self) -> None:
        """The client is gone: end the TUI's whole process group; free the slot."""
        if self.command_process is not None and self.command_process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.command_process.pid, signal.SIGTERM)
        if self.process is not None:
            self.process.hang_up()
        elif self.task is not None:
            self.task.cancel()  # still asking the API, or starting the TUI
        if self.pump is not None:
            self.pump.close()
        if self.command_input is not None:
            self.command_input.close()
        self._release()

    def _visitor(self) -> tuple[str, str] | None:
        """The SSH client's address and the door's proof of it, for the TUI's requests."""
        address = self.connection.address
        if address == "?":
            return None
        return address, client_proof(self.door.secret, address)


class SftpSession(AccountChannel, SSHServerStreamSession[bytes]):
    """An ``sftp`` subsystem channel: the key's account's files (:mod:`doors.sftp`).

    It counts as one session in the limits, asks the API who the key is (a key with
    no account gets one line on stderr and exit status 1), runs asyncssh's SFTP
    server over :class:`doors.sftp.PairchatSftp`, and when the SFTP session ends
    (or the client goes) revokes the session's token and frees its place."""

    def __init__(self, door: SshDoor, connection: DoorConnection) -> None:
        super().__init__(None, self._sftp_server, sftp_version=MIN_SFTP_VERSION)
        self.door = door
        self.connection = connection
        self.chan: asyncssh.SSHServerChannel[bytes] | None = None
        self.held: Held | None = None
        self.task: asyncio.Task[None] | None = None
        self.api: FileApi | None = None
        self.server: PairchatSftp | None = None
        self.client_gone = False
        self.sftp_ended = asyncio.Event()
        """Set when asyncssh's SFTP server exits (its open files closed)."""
        self.closed = asyncio.Event()
        """Set when the channel is gone (asyncssh's server may have ended without exiting:
        a client that goes before its first packet)."""

    def connection_made(self, chan: asyncssh.SSHServerChannel[bytes]) -> None:  # type: ignore[override]
        self.chan = chan
        super().connection_made(chan)

    def session_started(self) -> None:
        self.held = self.door.take_session(self.connection)
        if self.held is None:
            self._refuse(self.door.why_full(self.connection))
            return
        self.door.sessions.add(self)
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        try:
            api = await self._file_api()
            if api is None:
                return
            self.api = api
            log.info("%s: SFTP session started (user %s)", self.connection.address, api.username)
            super().session_started()  # asyncssh's SFTP server, over _sftp_server
            await _first(self.sftp_ended, self.closed)
            if self.server is not None and self.server.sending and not self.sftp_ended.is_set():
                # the client went while a file it closed is being sent: let that finish
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.sftp_ended.wait(), SFTP_END_GRACE)
            log.info("%s: SFTP session ended (user %s)", self.connection.address, api.username)
        except Exception:
            log.exception("%s: the SFTP session failed", self.connection.address)
            self._refuse("pairchat could not start SFTP; try again in a minute")
        finally:
            if self.api is not None:
                await asyncio.shield(self.door.api.revoke(self.api.token, self.door.http))
            self._release()

    async def _file_api(self) -> FileApi | None:
        """The file routes as the key's account, or None (refused with a sentence)."""
        account = await self._account()
        if account is None:
            return None
        address = self.connection.address
        return FileApi(
            http=self.door.http,
            url=self.door.config.api.rstrip("/"),
            username=account.username,
            token=account.token,
            visitor_headers={**self.door.visitor_headers(address), **self._request_id()},
        )

    def _request_id(self) -> dict[str, str]:
        """The session's id (doors/limits.py) on every API call, as the TUI sends it."""
        session = self.held.session if self.held is not None else None
        return {REQUEST_ID_HEADER: session} if session else {}

    def _sftp_server(self, chan: SSHChannel[bytes]) -> PairchatSftp:
        assert self.api is not None and isinstance(chan, asyncssh.SSHServerChannel)
        self.server = PairchatSftp(
            chan,
            self.api,
            spool_dir=self.door.config.spool_dir,
            budget=self.door.spool,
            max_file_bytes=self.door.config.max_file_bytes,
            client_gone=lambda: self.client_gone,
            on_exit=self._sftp_exited,
        )
        return self.server

    def _sftp_exited(self) -> None:
        """The SFTP server is done: exit status 0 (scp fails a session without one)."""
        self.sftp_ended.set()
        if self.chan is not None:
            with contextlib.suppress(Exception):
                self.chan.exit(0)

    def eof_received(self) -> bool:
        self.client_gone = True  # an upload still open now was not finished: not sent
        return super().eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self.client_gone = True
        self.closed.set()
        super().connection_lost(exc)
        if self.task is None or self.api is None:
            self._release()
        if self.task is not None and self.api is None:
            self.task.cancel()  # still asking the API who the key is

    def hang_up(self) -> None:
        """The door is closing: end the channel (the SFTP server then exits)."""
        self.client_gone = True
        if self.chan is not None:
            self.chan.close()
        if self.task is not None and self.api is None:
            self.task.cancel()


async def _first(*events: asyncio.Event) -> None:
    """Until one of ``events`` is set."""
    waits = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()


async def run_ssh_door(config: SshDoorConfig, factory: SessionFactory, secret: str) -> None:
    """Serve until cancelled (SIGTERM/SIGINT in ``python -m doors``), then close."""
    door = SshDoor(config, factory, secret)
    await door.start()
    print(
        f"pairchat SSH door on {config.host}:{config.port} for {config.api}\n"
        f"host key {door.fingerprint} ({config.data_dir / 'ssh_host_ed25519_key.pub'})",
        flush=True,
    )
    try:
        await asyncio.Event().wait()
    finally:
        await door.close()
