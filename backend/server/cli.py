"""``pairchat-server``: serve the API; demo data, invites, backup, export, forget, recount.

``pairchat-server`` alone (or ``serve``) runs the API under granian's ASGI
interface with the front of ``backend/server/front.py``; ``--dev`` uses Flask's
development server instead. Settings are read once: flags > ``PAIRCHAT_*``
environment > defaults (``backend.core.settings``).

Every refusal is one line on stderr and exit code 2, never a traceback: a
mistyped command (the real ones are listed), a bad setting, a busy port, a data
folder that is missing or cannot be written, a folder another server holds.

``status`` reads the running server's ``--metrics-port`` (``backend/server/status.py``).

Operator commands and a running server (docs/deploy.md, "Operator commands"):
``serve`` holds the data folder's lock (``backend/storage/lock.py``). ``forget``
erases a file the server may hold open, so it takes the lock too and refuses
while a server runs; so does ``recount-files``, which sets the files tallies from
the pair files (a send charges the tally and writes its pair file in two steps, so
a count taken between them would be wrong). ``invite`` and ``demo-data`` only add rows in SQLite
transactions — exactly what another worker process does — so they run beside
a server safely; ``backup`` and ``export`` only read.
"""

from __future__ import annotations

import contextlib
import difflib
import errno
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Iterable
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple, NoReturn

import click
from click.core import ParameterSource

from backend.core.errors import NoAttachment, PairchatError
from backend.core.extras import MULTI_NODE, SSH_DOOR, WEB_DOOR, MissingExtra, require
from backend.core.settings import (
    DEFAULT_DATA_DIR,
    THREAD_RESERVE,
    Settings,
    SettingsError,
    is_loopback,
)
from backend.core.usernames import Pair, canonical_pair
from backend.server import capacity
from backend.server.door_processes import DoorOptions, door_options, doors_of, running_doors
from backend.server.export import jsonl_line, markdown_lines, saved_name
from backend.server.placement_cli import placement
from backend.services.wiring import Services, build_services
from backend.storage.conversation import Conversation, Message
from backend.storage.conversations import LeftBehind
from backend.storage.database import secure_files
from backend.storage.door_secret import door_secret
from backend.storage.lock import FolderBusy, FolderLock

log = logging.getLogger("pairchat")
DEFAULTS = Settings()
PROG = "pairchat-server"
KILL_TIMEOUT = 1  # seconds granian gives a worker to stop before killing it


class Refused(click.ClickException):
    """A one-line refusal, exit code 2."""

    exit_code = 2


data_dir_option = click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULTS.data_dir,
    show_default=True,
    help="Folder holding the conversation files and the accounts file [env PAIRCHAT_DATA_DIR].",
)


def settings_from(ctx: click.Context, environ: dict[str, str] | None = None) -> Settings:
    """Defaults < ``PAIRCHAT_*`` in ``environ`` < the flags given on the command line."""
    given = {
        name: value
        for name, value in ctx.params.items()
        if name in _SETTING_NAMES and ctx.get_parameter_source(name) is ParameterSource.COMMANDLINE
    }
    try:
        return Settings.from_env(os.environ if environ is None else environ, **given)
    except SettingsError as exc:
        raise click.UsageError(str(exc)) from None


_SETTING_NAMES = set(Settings.__dataclass_fields__)


def _pair(user_one: str, user_two: str) -> Pair:
    try:
        return canonical_pair(user_one, user_two)
    except PairchatError as exc:
        raise click.UsageError(exc.message) from None


def _existing_folder(ctx: click.Context) -> Settings:
    """Settings for a one-off command on a data folder that must already exist."""
    settings = settings_from(ctx).replace(watch_interval=0)  # no watcher thread
    folder = settings.data_dir
    if not folder.is_dir():
        raise Refused(f"no data folder at {folder} (give --data-dir, or start the server once)")
    return settings


def _services(settings: Settings) -> Services:
    try:
        return build_services(settings)
    except MissingExtra as exc:
        raise Refused(exc.message) from None
    except (OSError, PairchatError) as exc:
        raise Refused(f"cannot use the data folder {settings.data_dir}: {_why(exc)}") from None


def _why(exc: BaseException) -> str:
    if isinstance(exc, PairchatError):
        return exc.message
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return str(exc)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """pairchat API server and operator tools.

    Without a command, runs `serve` with the options given:
    `pairchat-server --open` is `pairchat-server serve --open`.
    """
    os.umask(0o077)  # whatever we create is the owner's only
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


def main(argv: list[str] | None = None) -> None:
    """Entry point: ``serve`` is the default command; refusals are one line, exit 2."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args and not args[0].startswith("-") and args[0] not in cli.commands:
        _fail(_unknown_command(args[0]))
    if not args or (args[0] not in cli.commands and args[0] not in ("-h", "--help")):
        args = ["serve", *args]
    try:
        code = cli.main(args=args, prog_name=PROG, standalone_mode=False)
    except click.exceptions.Abort:
        _fail("aborted", 1)
    except click.ClickException as exc:
        _fail(exc.format_message(), exc.exit_code)
    sys.exit(code if isinstance(code, int) else 0)


def _unknown_command(name: str) -> str:
    commands = sorted(cli.commands)
    close = difflib.get_close_matches(name, commands, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return f"no command '{name}'{hint}; the commands are {', '.join(commands)}"


def _fail(message: str, code: int = 2) -> NoReturn:
    click.echo(f"{PROG}: {' '.join(message.split())}", err=True)
    sys.exit(code)


# -- serve -------------------------------------------------------------------------
@cli.command()
@click.option(
    "--host", default=DEFAULTS.host, show_default=True, help="Address [env PAIRCHAT_HOST]."
)
@click.option(
    "--port", default=DEFAULTS.port, show_default=True, type=int, help="[env PAIRCHAT_PORT]"
)
@data_dir_option
@click.option(
    "--open",
    "open_mode",
    is_flag=True,
    help="Seed mode: conversation routes need no token (logged loudly; loopback only) "
    "[env PAIRCHAT_OPEN_MODE].",
)
@click.option(
    "--allow-open-public",
    is_flag=True,
    help="Let --open listen on a non-loopback --host too [env PAIRCHAT_ALLOW_OPEN_PUBLIC].",
)
@click.option(
    "--allowed-hosts",
    default=DEFAULTS.allowed_hosts,
    help="Open mode: Host names to answer besides localhost, comma-separated "
    "[env PAIRCHAT_ALLOWED_HOSTS].",
)
@click.option("--dev", is_flag=True, help="Flask's development server (debugging only).")
@click.option(
    "--workers",
    default=DEFAULTS.workers,
    show_default=True,
    type=int,
    help="Worker processes (wake-ups cross processes through the accounts file) "
    "[env PAIRCHAT_WORKERS].",
)
@click.option(
    "--threads",
    type=int,
    default=None,
    help=f"The old capacity knob: hold threads - {THREAD_RESERVE} streams and long-polls "
    "per worker [default: from the open-files limit; env PAIRCHAT_THREADS].",
)
@click.option(
    "--max-waiters",
    type=int,
    default=None,
    help="Streams and long-polls held at once per worker [default: the connections less "
    f"{THREAD_RESERVE}; env PAIRCHAT_MAX_WAITERS].",
)
@click.option(
    "--max-connections",
    type=int,
    default=None,
    help="Open connections per worker, idle ones included [default: the open-files limit, "
    "raised to its hard limit at start, less room for files; env PAIRCHAT_MAX_CONNECTIONS].",
)
@click.option(
    "--max-waits-per-user",
    type=int,
    default=DEFAULTS.max_waits_per_user,
    show_default=True,
    help="Long-polls one user may hold; a newer one answers the oldest "
    "[env PAIRCHAT_MAX_WAITS_PER_USER].",
)
@click.option(
    "--registration",
    type=click.Choice(["open", "invite", "closed"]),
    default=DEFAULTS.registration,
    show_default=True,
    help="Who may create an account; invite codes come from `pairchat-server invite` "
    "[env PAIRCHAT_REGISTRATION].",
)
@click.option(
    "--trusted-proxies",
    type=int,
    default=DEFAULTS.trusted_proxies,
    show_default=True,
    help="Reverse proxies in front whose X-Forwarded-For gives the client's address "
    "[env PAIRCHAT_TRUSTED_PROXIES].",
)
@click.option(
    "--ssh-port",
    type=int,
    default=None,
    help="Also run the SSH door on this port: the TUI for every SSH session, the key is "
    "the account (docs/doors.md) [env PAIRCHAT_SSH_PORT].",
)
@click.option(
    "--web-port",
    type=int,
    default=None,
    help="Also run the browser door on this port: the TUI in a browser tab; put it behind "
    "TLS (docs/doors.md) [env PAIRCHAT_WEB_PORT].",
)
@click.option(
    "--web-public-url",
    default=None,
    help="The browser door's own URL, e.g. https://chat.example.org: its page is built from "
    "it and a websocket from any other Origin is refused; needed with --host 0.0.0.0 "
    "[env PAIRCHAT_WEB_PUBLIC_URL].",
)
@door_options
@click.option(
    "--metrics-port",
    type=click.IntRange(1, 65535),
    default=None,
    envvar="PAIRCHAT_METRICS_PORT",
    help="Serve Prometheus metrics (GET /metrics) on this port of --metrics-host, never on "
    'the API\'s port (docs/deploy.md, "Monitoring") [env PAIRCHAT_METRICS_PORT].',
)
@click.option(
    "--metrics-host",
    default="127.0.0.1",
    show_default=True,
    envvar="PAIRCHAT_METRICS_HOST",
    help="The metrics port's address: loopback unless a private network needs another "
    "[env PAIRCHAT_METRICS_HOST].",
)
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    envvar="PAIRCHAT_LOG_FORMAT",
    help="json: one JSON object a line, for log shippers [env PAIRCHAT_LOG_FORMAT].",
)
@click.option(
    "--access-log",
    is_flag=True,
    envvar="PAIRCHAT_ACCESS_LOG",
    help="Log every request (method, path, status, ms, request id); without it only the "
    "5xx ones [env PAIRCHAT_ACCESS_LOG].",
)
@click.option(
    "--node",
    default=None,
    help="Multi-node mode: this node's name in the placement map; needs --database-url "
    "and --redis-url (docs/cluster.md) [env PAIRCHAT_NODE].",
)
@click.option(
    "--database-url",
    default=None,
    help="Multi-node mode: postgresql://… for accounts, the feed and the placement map "
    "[env PAIRCHAT_DATABASE_URL].",
)
@click.option(
    "--redis-url",
    default=None,
    help="Multi-node mode: redis://… for wake-ups across nodes [env PAIRCHAT_REDIS_URL].",
)
@click.pass_context
def serve(
    ctx: click.Context,
    dev: bool,
    metrics_port: int | None,
    metrics_host: str,
    log_format: str,
    access_log: bool,
    **_: Any,
) -> None:
    """Run the API server."""
    from backend.server import logs

    granian_logging = logs.use(log_format, access_log)
    settings = settings_from(ctx)
    if dev and metrics_port is not None:
        raise Refused("--metrics-port needs the real server (granian), not --dev")
    settings = settings.replace(data_dir=settings.data_dir.resolve())
    _require_extras(settings)
    if settings.open_mode and not settings.allow_open_public and not is_loopback(settings.host):
        raise Refused(
            f"--open serves anyone as anyone: it listens on loopback only, not on "
            f"{settings.host}, unless --allow-open-public is given too"
        )
    metrics_url = None if metrics_port is None else _url(metrics_host, metrics_port)
    lock = _take_folder(settings, metrics_url)
    try:
        _check_port(settings.host, settings.port)
        if metrics_port is not None:
            _check_port(metrics_host, metrics_port, flag="--metrics-port")
        for door in doors_of(settings):
            _check_port(settings.host, door.port, flag=f"--{door.kind}-port")
        everywhere = settings.host in ("", "0.0.0.0", "::")
        if settings.web_port is not None and everywhere and not settings.web_public_url:
            raise Refused(
                "--web-port on every address needs --web-public-url (the URL browsers "
                "open, e.g. https://chat.example.org): the browser door accepts only its "
                "own pages"
            )
        options = DoorOptions.from_params(ctx.params)
        if (kind := options.unused(settings)) is not None:
            raise Refused(f"the {kind} door's flags need --{kind}-port (the door they are for)")
        try:  # the SSH door's secret: whoever starts first (this server or a door) makes it
            door_secret(settings.data_dir, settings.door_secret)
        except PairchatError as exc:
            raise Refused(exc.message) from None
        if settings.open_mode:
            log.warning("=" * 72)
            log.warning("OPEN MODE: no authentication on conversation routes. Local use only.")
            log.warning("=" * 72)
        log.info(
            "pairchat serving %s on http://%s:%d", settings.data_dir, settings.host, settings.port
        )
        if not dev:
            settings = capacity.apply(settings)
        with contextlib.ExitStack() as running:
            door_started = None
            if metrics_port is not None:  # first: the doors write their figures in its folder
                facts = running.enter_context(_metrics(settings, metrics_host, metrics_port))
                door_started = facts.door_started
            running.enter_context(running_doors(settings, options, door_started))
            if dev:
                from backend.server.app import create_app

                create_app(settings).run(host=settings.host, port=settings.port, threaded=True)
                return
            metrics = metrics_port is not None
            _granian(settings, metrics=metrics, logging_config=granian_logging)
    finally:
        lock.release()


def _url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


@contextlib.contextmanager
def _metrics(settings: Settings, host: str, port: int) -> Any:
    """``GET /metrics`` from this (main) process for the whole serve: its own port, a
    private folder for the workers' and the doors' metric files (backend/server/metrics.py)
    and every process's last errors (``GET /errors``, backend/server/logs.py)."""
    import tempfile

    from backend.server import logs

    folder = Path(tempfile.mkdtemp(prefix="pairchat-metrics-"))
    # before prometheus_client loads; the doors started after this inherit it
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(folder)
    from backend.server import metrics

    errors = logs.keep_last_errors(folder)

    facts = metrics.ServerFacts(
        settings.data_dir,
        settings.workers,
        _version(),
        time.time(),
        held_capacity=settings.waiter_slots * settings.workers,
        recent=metrics.RecentMessages(folder),
    )
    try:
        server = metrics.serve(host, port, folder, facts, partial(logs.last_errors, folder))
    except BaseException as exc:
        logging.getLogger().removeHandler(errors)
        metrics.finish(folder)
        if isinstance(exc, OSError):
            raise Refused(f"cannot serve metrics on {host}:{port}: {_why(exc)}") from None
        raise
    log.info("metrics on %s/metrics", _url(host, port))
    try:
        yield facts
    finally:
        server.shutdown()
        logging.getLogger().removeHandler(errors)
        metrics.finish(folder)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pairchat")
    except PackageNotFoundError:
        return "unknown"


def _make_default_parent(folder: Path) -> None:
    """The default data folder's parents are made (the user data folder of a fresh
    install); a folder given by flag or env must have its parent already (a typo is
    refused, not created)."""
    if folder.resolve() == DEFAULT_DATA_DIR.resolve():
        with contextlib.suppress(OSError):  # the refusal that follows says why
            folder.parent.mkdir(mode=0o700, parents=True, exist_ok=True)


def _require_extras(settings: Settings) -> None:
    """A one-line refusal naming the extra when a door or multi-node mode lacks its own."""
    wanted = [SSH_DOOR if door.kind == "ssh" else WEB_DOOR for door in doors_of(settings)]
    if settings.multi_node:
        wanted.append(MULTI_NODE)
    try:
        for feature in wanted:
            require(feature)
    except MissingExtra as exc:
        raise Refused(exc.message) from None


def _take_folder(settings: Settings, metrics_url: str | None = None) -> FolderLock:
    """The data folder (made 0700 if missing and its parent exists), locked for this server."""
    folder = settings.data_dir
    _make_default_parent(folder)
    if not folder.parent.is_dir():
        raise Refused(f"the data folder {folder} is missing, and so is its parent folder")
    try:
        folder.mkdir(mode=0o700, exist_ok=True)
        holder = f"pid {os.getpid()}, http://{settings.host}:{settings.port}"
        if metrics_url is not None:  # `pairchat-server status` reads it here
            holder += f", metrics {metrics_url}"
        lock = FolderLock(folder).acquire(holder)
    except FolderBusy as busy:
        raise Refused(f"another pairchat server ({busy.holder}) is serving {folder}") from None
    except OSError as exc:
        raise Refused(f"cannot use the data folder {folder}: {_why(exc)}") from None
    try:
        secure_files(folder)
        _services(settings.replace(watch_interval=0)).close()  # opens and migrates the files
    except Refused:
        lock.release()
        raise
    except OSError as exc:
        lock.release()
        raise Refused(f"cannot use the data folder {folder}: {_why(exc)}") from None
    return lock


def _check_port(host: str, port: int, flag: str = "--port") -> None:
    """A one-line refusal if ``host:port`` cannot be listened on (granian would say it in 40)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise Refused(f"cannot listen on {host}: {exc.strerror}") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise Refused(
                    f"port {port} on {host} is busy (another server?); choose one with {flag}"
                ) from None
            raise Refused(f"cannot listen on {host}:{port}: {_why(exc)}") from None


def _granian(
    settings: Settings, metrics: bool = False, logging_config: dict[str, Any] | None = None
) -> None:
    from granian import Granian
    from granian.constants import HTTPModes, Interfaces, Loops
    from granian.http import HTTP1Settings

    from backend.server import logs
    from backend.server.front import RELEASE_SIGNAL, create_front
    from backend.server.stop_signals import StopSignals

    connections = settings.max_connections or capacity.MAX_CONNECTIONS  # capacity.apply set it
    server = Granian(
        "backend.server.front:create_front",
        address=settings.host,
        port=settings.port,
        interface=Interfaces.ASGI,
        workers=settings.workers,
        loop=Loops.uvloop,
        http=HTTPModes.http1,
        http1_settings=HTTP1Settings(
            header_read_timeout=int(settings.header_timeout * 1000),
            keep_alive=True,
            max_buffer_size=16 * 1024,
        ),
        backlog=2048,
        backpressure=connections,
        respawn_failed_workers=True,
        websockets=False,
        workers_kill_timeout=KILL_TIMEOUT,
        log_dictconfig=logging_config,
    )

    def stop(signum: int) -> None:
        """Held waits answered at once, then granian's graceful stop (which then takes ms)."""
        for worker in list(server.wrks):
            pid = getattr(getattr(worker, "inner", None), "pid", None)
            if pid:
                with contextlib.suppress(OSError):
                    os.kill(pid, RELEASE_SIGNAL)
        server.signal_handler_interrupt()

    def take_the_stop_signals() -> None:
        # After granian's own handlers; SIGHUP too: closing the terminal stops the
        # server (granian would reload its workers and keep running). Acted on from
        # whichever thread catches them (backend/server/stop_signals.py).
        StopSignals((signal.SIGTERM, signal.SIGINT, signal.SIGHUP), stop).install()

    server.on_startup(take_the_stop_signals)
    logs.also_keep_errors_of("_granian")  # after Granian() set its logger up: `status` shows them
    # Workers are forked by this process's main thread, whose death their ORPHAN_SIGNAL is.
    loader = partial(create_front, settings, server_pid=os.getpid(), metrics=metrics)
    server.serve(target_loader=loader, wrap_loader=False)


# -- operator commands ------------------------------------------------------------------
@cli.command("demo-data")
@data_dir_option
@click.pass_context
def demo_data(ctx: click.Context, data_dir: Path) -> None:
    """Create the demo accounts (alice, bob, carol) and a short conversation.

    Only into a new folder or one that holds just the demo accounts (it refuses real
    accounts, which it would mix demo messages into); safe while a server runs.
    """
    from backend.server.demo import create_demo_data

    settings = settings_from(ctx).replace(watch_interval=0)
    _make_default_parent(settings.data_dir)
    if not settings.data_dir.parent.is_dir():
        raise Refused(f"the data folder {settings.data_dir} is missing, and so is its parent")
    # The demo's own accounts are made here, not through /register: no limits apply.
    settings = settings.replace(register_rate_limit="1000 per minute", registration="open")
    with _services(settings) as services:
        try:
            made = create_demo_data(services)
        except PairchatError as exc:
            raise Refused(f"cannot create the demo data: {exc.message}") from None
        for name, password in made.items():
            click.echo(f"{name:6} password: {password}")


@cli.command()
@data_dir_option
@click.option("--count", default=1, show_default=True, type=click.IntRange(1, 1000))
@click.option(
    "--expires-days",
    default=7.0,
    show_default=True,
    type=click.FloatRange(0, min_open=True),
    help="Days before an unused code expires.",
)
@click.pass_context
def invite(ctx: click.Context, data_dir: Path, count: int, expires_days: float) -> None:
    """Print one-time invite codes for `--registration invite` (safe while serving)."""
    with _services(_existing_folder(ctx)) as services:
        try:
            codes = [services.accounts.make_invite(int(expires_days * 86400)) for _ in range(count)]
        except PairchatError as exc:
            raise Refused(f"cannot make an invite: {exc.message}") from None
    for code in codes:
        click.echo(code)


# What a restored folder needs besides the databases: the doors' secret and the SSH
# host key (without it every user's ssh warns that the host changed).
BACKUP_SECRETS = ("door.secret", "ssh_host_ed25519_key", "ssh_host_ed25519_key.pub")


def _copy_secrets(data_dir: Path, dest: Path) -> None:
    """Copy each of ``BACKUP_SECRETS`` that exists, owner-only (0600) from the start."""
    for name in BACKUP_SECRETS:
        source = data_dir / name
        if not source.is_file():
            continue
        target = dest / name
        target.unlink(missing_ok=True)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(source.read_bytes())


@cli.command()
@data_dir_option
@click.argument("dest", type=click.Path(file_okay=False, path_type=Path))
@click.pass_context
def backup(ctx: click.Context, data_dir: Path, dest: Path) -> None:
    """Consistent copy of every file into DEST, safe while the server runs.

    The doors' secret and the SSH host key come along (owner-only); DEST may not be
    inside the data folder. The accounts file is copied first, then each pair file: a
    send writes its pair file before the feed, so every message the copied feed points
    at is in the copied pair file (the feed never points past it).
    """
    settings = _existing_folder(ctx)
    if dest.resolve().is_relative_to(settings.data_dir.resolve()):
        raise Refused(f"the backup cannot go inside the data folder {settings.data_dir}")
    with _services(settings) as services:
        try:
            dest.mkdir(mode=0o700, parents=True, exist_ok=True)
            _copy_secrets(settings.data_dir, dest)
        except OSError as exc:
            raise Refused(f"cannot write the backup to {dest}: {_why(exc)}") from None
        services.account_store.backup_to(dest / services.account_store.path.name)
        count = 0
        for path in services.conversations.files():
            conversation = Conversation(path)
            try:
                conversation.backup_to(dest / path.name)
            finally:
                conversation.close()
            count += 1
        click.echo(f"backed up the accounts file and {count} conversation(s) to {dest}")


@cli.command()
@data_dir_option
@click.argument("user_one")
@click.argument("user_two")
@click.option(
    "--format", "fmt", type=click.Choice(["jsonl", "md"]), default="jsonl", show_default=True
)
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the transcript to this file and the conversation's files beside it, "
    "in OUTPUT.files/<id>-<name> (without it: the transcript on stdout, files named only).",
)
@click.pass_context
def export(
    ctx: click.Context,
    data_dir: Path,
    user_one: str,
    user_two: str,
    fmt: str,
    output: Path | None,
) -> None:
    """Print one conversation as JSON lines or Markdown (control characters escaped)."""
    pair = _pair(user_one, user_two)
    settings = _existing_folder(ctx)
    if output is not None and output.resolve().is_relative_to(settings.data_dir.resolve()):
        raise Refused(f"the export cannot go inside the data folder {settings.data_dir}")
    with _services(settings) as services:
        conversation = services.conversations.get(pair.low, pair.high, create=False)
        messages = [] if conversation is None else conversation.get_history()
        if output is None:
            lines: Iterable[str] = (
                markdown_lines(pair.low, pair.high, messages)
                if fmt == "md"
                else map(jsonl_line, messages)
            )
            for line in lines:
                click.echo(line)
            named = sum(message.attachment is not None for message in messages)
            if named:
                click.echo(
                    f"{named} file(s) named, not written: --output PATH writes them beside "
                    "the transcript",
                    err=True,
                )
            return
        folder = output.with_name(output.name + ".files")
        try:
            saved = _export_files(conversation, messages, folder)
            if fmt == "md":
                lines = markdown_lines(
                    pair.low, pair.high, messages, folder.name if saved else None
                )
            else:
                lines = (
                    jsonl_line(m, f"{folder.name}/{saved_name(m)}" if m.id in saved else None)
                    for m in messages
                )
            fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                for line in lines:
                    out.write(line + "\n")
        except OSError as exc:
            raise Refused(f"cannot write the export to {output}: {_why(exc)}") from None
    click.echo(
        f"exported {len(messages)} message(s) to {output} and {len(saved)} file(s) to {folder}"
    )


def _export_files(
    conversation: Conversation | None, messages: list[Message], folder: Path
) -> set[int]:
    """Write each message's file into ``folder`` (0700; each file 0600, streamed a chunk at
    a time); the ids written (a file deleted meanwhile is left out)."""
    saved: set[int] = set()
    with_files = [message for message in messages if message.attachment is not None]
    if conversation is None or not with_files:
        return saved
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    for message in with_files:
        target = folder / saved_name(message)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as out:
            try:
                for chunk in conversation.file_chunks(message.id):
                    out.write(chunk)
            except NoAttachment:
                target.unlink(missing_ok=True)
                continue
        saved.add(message.id)
    return saved


@cli.command()
@data_dir_option
@click.argument("user_one")
@click.argument("user_two")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_context
def forget(ctx: click.Context, data_dir: Path, user_one: str, user_two: str, yes: bool) -> None:
    """Erase one conversation (its file) for good. Stop the server first."""
    a, b = _pair(user_one, user_two)
    settings = _existing_folder(ctx)
    try:
        lock = FolderLock(settings.data_dir).acquire(f"pid {os.getpid()}, pairchat-server forget")
    except FolderBusy as busy:
        raise Refused(
            f"a pairchat server ({busy.holder}) is serving {settings.data_dir}: "
            "stop it, then run forget again (it would keep serving the erased file)"
        ) from None
    try:
        with _services(settings) as services:
            if not yes:
                click.confirm(f"Erase the conversation of {a} and {b}?", abort=True)
            conversation = services.conversations.get(a, b, create=False)
            # Its files go with it: what they were charged is given back once the file
            # is gone, never before (a failed erase leaves files and tallies as they
            # were; a crash between the two leaves a tally too high: recount-files).
            # The file's removal is the point of no return: a -wal/-shm left beside it
            # is only warned about (the conversation is erased all the same).
            charged = {} if conversation is None else conversation.charged_bytes()
            left: list[tuple[Path, OSError]] = []
            try:
                found = services.conversations.forget(a, b)
            except LeftBehind as partly:
                found, left = partly.existed, partly.left
            except OSError as exc:
                raise Refused(
                    f"cannot erase {a}_{b}.db: {_why(exc)}; nothing was given back, "
                    "run forget again once it can be"
                ) from None
            for username, size in charged.items():
                services.account_store.refund_files(username, size)
            services.account_store.forget_pair(a, b)
        click.echo(f"erased {a}_{b}.db" if found else f"no conversation between {a} and {b}")
        if left:
            names = ", ".join(f"{path} ({_why(exc)})" for path, exc in left)
            click.echo(
                f"warning: could not remove {names}: delete it by hand, it holds pieces "
                "of the erased messages (SQLite does not read it back)",
                err=True,
            )
    finally:
        lock.release()


@cli.command("recount-files")
@data_dir_option
@click.pass_context
def recount_files(ctx: click.Context, data_dir: Path) -> None:
    """Set each user's files tally (the user quota) to the bytes of the files charged to
    them across every pair file. Stop the server first.

    Files from before pair schema version 6 are charged to their author, as a file is
    now; those of an author with no account become nobody's. Run it once after
    upgrading from before version 6, and after a crash or a failed forget.
    """
    settings = _existing_folder(ctx)
    if settings.multi_node:
        raise Refused(
            "recount-files adds up every pair file, and in multi-node mode each node "
            "holds only its own pairs: it would set the shared tallies to one node's part"
        )
    try:
        lock = FolderLock(settings.data_dir).acquire(
            f"pid {os.getpid()}, pairchat-server recount-files"
        )
    except FolderBusy as busy:
        raise Refused(
            f"a pairchat server ({busy.holder}) is serving {settings.data_dir}: stop it, "
            "then run recount-files again (a send it takes meanwhile would be miscounted)"
        ) from None
    try:
        with _services(settings) as services:
            counted = _recount(services)
    finally:
        lock.release()
    for username, (was, now) in sorted(counted.changed.items()):
        click.echo(f"{username}: {was} -> {now} bytes")
    click.echo(
        f"recounted {counted.pair_files} pair file(s): {len(counted.changed)} tally(ies) "
        f"changed, {counted.settled} file(s) of authors with no account charged to nobody"
    )


class Recounted(NamedTuple):
    """What ``recount-files`` found and did."""

    pair_files: int
    changed: dict[str, tuple[int, int]]  # username: (tally was, tally now)
    settled: int  # files charged to a name with no account, now nobody's


def _recount(services: Services) -> Recounted:
    """Every pair file's charges added up, then every tally set to its sum in one
    transaction; nothing is set when a pair file cannot be read."""
    accounts = services.account_store.usernames()
    tallies: dict[str, int] = {}
    settled = 0
    count = 0
    for path in services.conversations.files():
        conversation = Conversation(path)
        try:
            charged, found = conversation.settle_charges(accounts)
        except PairchatError as exc:
            raise Refused(f"cannot read {path.name}: {exc.message}; no tally was changed") from None
        finally:
            conversation.close()
        for username, size in charged.items():
            tallies[username] = tallies.get(username, 0) + size
        settled += found
        count += 1
    return Recounted(count, services.account_store.set_files_bytes(tallies), settled)


@cli.command()
@data_dir_option
@click.option("--json", "as_json", is_flag=True, help="One JSON object, for scripts.")
@click.pass_context
def status(ctx: click.Context, data_dir: Path, as_json: bool) -> None:
    """What the server on the data folder is doing: pid, uptime, workers, online, messages
    sent, disk (read from its --metrics-port). Exit code 3 when no server runs."""
    import json

    from backend.server.status import NOT_RUNNING, lines
    from backend.server.status import status as read_status

    logging.getLogger("httpx").setLevel(logging.WARNING)  # its request lines are noise here
    folder = settings_from(ctx).data_dir.resolve()
    now = read_status(folder)
    if as_json:
        click.echo(json.dumps(now.as_dict(), indent=2))
    else:
        for line in lines(now):
            click.echo(line)
    if not now.running:
        ctx.exit(NOT_RUNNING)


cli.add_command(placement)

if __name__ == "__main__":
    main()
