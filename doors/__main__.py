"""``python -m doors ssh|web …``: run a door (``pairchat-server`` starts them this way).

    python -m doors ssh --port 2222 --data-dir DIR --api http://127.0.0.1:5000
    python -m doors web --port 8080 --data-dir DIR --api http://127.0.0.1:5000

Every refusal (a busy port, a bad option, a data folder that cannot be used) is
one line on stderr and exit status 2. SIGTERM or SIGINT stops the door: its
sessions are hung up first.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import importlib.util
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from doors.factory import FactoryGone, SessionFactory
from doors.limits import CURRENT_SESSION, Limits
from doors.session_env import program_env
from protocol import error_lines

PROG = "python -m doors"
TUI_COMMAND = (sys.executable, "-m", "tui.door")


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog=PROG, description="pairchat's SSH and browser doors.")
    doors = top.add_subparsers(dest="door", required=True)
    defaults = Limits()

    ssh = doors.add_parser("ssh", help="the SSH door: the TUI for every SSH session")
    _common(ssh, port=2222)
    ssh.add_argument("--public-host", help="the host name users type after ssh (for messages)")
    ssh.add_argument("--sessions-per-key", type=int, default=defaults.sessions_per_key)
    ssh.add_argument("--sessions-per-address", type=int, default=defaults.sessions_per_address)
    ssh.add_argument(
        "--connections-per-address", type=int, default=defaults.connections_per_address
    )
    ssh.add_argument("--max-sessions", type=int, default=defaults.sessions)
    ssh.add_argument("--login-timeout", type=float, default=defaults.login_timeout, help="seconds")
    ssh.add_argument("--keepalive", type=float, default=defaults.keepalive_interval, help="seconds")
    _idle(ssh, "session (claim or sign-in screen)")

    web = doors.add_parser("web", help="the browser door: the TUI in a browser tab")
    _common(web, port=8080)
    web.add_argument(
        "--public-url",
        help="the URL users open, e.g. https://chat.example.org (behind TLS); the page is "
        "built from it and only its pages may open a session",
    )
    web.add_argument(
        "--origin",
        action="append",
        default=[],
        metavar="URL",
        help="another URL whose pages may open a session (repeatable)",
    )
    web.add_argument("--max-sessions", type=int, default=100, help="tabs open at once")
    web.add_argument(
        "--tabs-per-address", type=int, default=10, help="tabs one client address may hold"
    )
    web.add_argument(
        "--trusted-proxy",
        action="append",
        default=[],
        metavar="ADDRESS",
        help="a proxy in front (e.g. 127.0.0.1) whose X-Forwarded-For names the client "
        "(repeatable; default: none, the socket's address is the client)",
    )
    _idle(web, "tab (sign-in screen)")
    return top


def _idle(door: argparse.ArgumentParser, what: str) -> None:
    defaults = Limits()
    door.add_argument(
        "--signin-idle",
        type=float,
        default=defaults.signin_idle,
        help=f"seconds without a key before a {what} that is not signed in ends (0: never)",
    )
    door.add_argument(
        "--idle",
        type=float,
        default=defaults.idle,
        help="seconds without a key before a signed-in session ends (default 0: never)",
    )


def _common(door: argparse.ArgumentParser, port: int) -> None:
    door.add_argument("--port", type=int, default=port)
    door.add_argument("--host", default="127.0.0.1", help="address to listen on")
    door.add_argument(
        "--data-dir",
        type=Path,
        required=True,
        help="the door's folder (host key, door secret, the sessions' drafts and outboxes)",
    )
    door.add_argument("--api", default="http://127.0.0.1:5000", help="the pairchat API's URL")


class _SessionId(logging.Filter):
    """Names the door session a line was logged in (``doors/limits.py``), as the
    server's lines name their request."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = CURRENT_SESSION.get()
        return True


def _keep_last_errors() -> None:
    """Started by ``pairchat-server serve --metrics-port``, keep this door's last ERROR
    lines beside the server's, for ``pairchat-server status`` (``protocol/error_lines.py``)."""
    folder = os.environ.get(error_lines.FOLDER_ENV)
    if folder and os.path.isdir(folder):
        handler = error_lines.LastErrors(Path(folder))
        handler.addFilter(_SessionId())
        logging.getLogger().addHandler(handler)


def main(argv: Sequence[str] | None = None) -> int:
    os.umask(0o077)  # whatever a door creates is the owner's only
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("asyncssh").setLevel(logging.WARNING)
    _keep_last_errors()
    args = parser().parse_args(argv)
    try:
        _need_extra(args.door)
        data_dir = _folder(args.data_dir)
        if args.door == "ssh":
            return _ssh(args, data_dir)
        return _web(args, data_dir)
    except Refusal as refusal:
        print(f"{PROG} {args.door}: {refusal}", file=sys.stderr)
        return 2


class Refusal(Exception):
    """A one-line reason the door cannot start."""


def _folder(path: Path) -> Path:
    folder = path.expanduser().resolve()
    if not folder.parent.is_dir():
        raise Refusal(f"the data folder {folder} is missing, and so is its parent")
    try:
        folder.mkdir(mode=0o700, exist_ok=True)
    except OSError as exc:
        raise Refusal(f"cannot use the data folder {folder}: {exc.strerror}") from None
    return folder


def _limits(args: argparse.Namespace) -> Limits:
    try:
        return Limits(
            sessions_per_key=args.sessions_per_key,
            sessions_per_address=args.sessions_per_address,
            connections_per_address=args.connections_per_address,
            sessions=args.max_sessions,
            login_timeout=args.login_timeout,
            keepalive_interval=args.keepalive,
            signin_idle=args.signin_idle,
            idle=args.idle,
        )
    except ValueError as exc:
        raise Refusal(str(exc)) from None


NEEDS = {
    "ssh": ("the SSH door", ("asyncssh",)),
    "web": ("the browser door", ("textual_serve", "aiohttp", "aiohttp_jinja2")),
}
"""What each door imports beyond the TUI's own dependencies: the ``doors`` extra."""


def _need_extra(kind: str) -> None:
    """Without the ``doors`` extra, one line that names it (not an ImportError's traceback)."""
    door, modules = NEEDS[kind]
    for module in modules:
        if importlib.util.find_spec(module) is None:
            raise Refusal(
                f"{door} needs the doors extra ({module} is not installed): "
                "pip install 'pairchat[doors]'"
            )


def _ssh(args: argparse.Namespace, data_dir: Path) -> int:
    from doors.hostkey import load_host_key
    from doors.secret import door_secret
    from doors.ssh_server import SshDoorConfig, run_ssh_door

    config = SshDoorConfig(
        data_dir=data_dir,
        api=args.api.rstrip("/"),
        port=args.port,
        host=args.host,
        public_host=args.public_host,
        limits=_limits(args),
    )
    try:
        load_host_key(data_dir)
        secret = door_secret(data_dir)
    except (OSError, ValueError) as exc:
        raise Refusal(f"cannot use the host key or door secret in {data_dir}: {exc}") from None
    factory = SessionFactory(TUI_COMMAND, program_env())

    async def serve() -> None:
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()
        for number in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.add_signal_handler(number, task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await run_ssh_door(config, factory, secret)

    try:
        asyncio.run(serve())
    except OSError as exc:
        factory.close()
        raise Refusal(_listen_error(exc, args.host, args.port)) from None
    except FactoryGone as exc:
        factory.close()
        raise Refusal(str(exc)) from None
    return 0


def _web(args: argparse.Namespace, data_dir: Path) -> int:
    from doors.secret import client_address, door_secret
    from doors.web import WebDoorConfig, run_web_door

    if args.max_sessions < 1 or args.tabs_per_address < 1:
        raise Refusal("--max-sessions and --tabs-per-address must be at least 1")
    if args.signin_idle < 0 or args.idle < 0:
        raise Refusal("--signin-idle and --idle must be 0 (never) or positive")
    for url in [args.public_url or "http://x", *args.origin]:
        if not url.startswith(("http://", "https://")):
            raise Refusal(f"{url!r} is not an http:// or https:// URL")
    try:
        trusted = tuple(client_address(a) for a in args.trusted_proxy)
    except ValueError as exc:
        raise Refusal(f"--trusted-proxy takes IP addresses: {exc}") from None
    config = WebDoorConfig(
        data_dir=data_dir,
        api=args.api.rstrip("/"),
        port=args.port,
        host=args.host,
        public_url=args.public_url,
        max_sessions=args.max_sessions,
        tabs_per_address=args.tabs_per_address,
        origins=tuple(args.origin),
        trusted_proxies=trusted,
        signin_idle=args.signin_idle,
        idle=args.idle,
    )
    try:
        secret = door_secret(data_dir)
    except (OSError, ValueError) as exc:
        raise Refusal(f"cannot use the door secret in {data_dir}: {exc}") from None
    try:
        run_web_door(config, secret)
    except OSError as exc:
        raise Refusal(_listen_error(exc, args.host, args.port)) from None
    return 0


def _listen_error(exc: OSError, host: str, port: int) -> str:
    if exc.errno == errno.EADDRINUSE:
        return f"port {port} on {host} is busy (another server?); choose one with --port"
    return f"cannot listen on {host}:{port}: {exc.strerror or exc}"


if __name__ == "__main__":
    sys.exit(main())
