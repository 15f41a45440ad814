"""``python -m tui.demo`` (``just demo``): the server with demo accounts, plus the TUI.

1. ``backend.server.cli demo-data`` creates alice, bob and carol (passwords
   ``<name>-pairchat``), their friendships and a short conversation (idempotent);
2. the server is started on the embedded default (port 5000, ``<repo>/conversations``)
   unless a pairchat server already answers there, which is then reused;
3. the TUI runs signed in as alice (``--user bob`` for a second terminal), with a
   demo-only config folder so the user's own token and outbox are untouched;
4. when the TUI quits — or the terminal closes (SIGHUP, or a hang-up no SIGHUP
   announced: ``tui/hangup.py``), or SIGTERM — the server
   this command started (and only that one) stops, its worker processes too: it
   runs in a process group of its own, which is stopped as a whole, and on Linux
   the kernel stops it even if this launcher is killed outright.

While the TUI runs, SIGHUP/SIGTERM are handled on its event loop (never by raising
inside Textual, which once left its output queue locked and the launcher hung with
the server alive): the server's group gets SIGTERM first, then the app exits.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import httpx
import platformdirs

from tui import hangup
from tui.config import APP_NAME, Config

if TYPE_CHECKING:
    from tui.app import PairchatApp

REPO = Path(__file__).resolve().parent.parent
DATA_DIR = REPO / "conversations"
DEMO_USERS = ("alice", "bob", "carol")


def demo_password(user: str) -> str:
    return f"{user}-pairchat"


def is_pairchat(url: str) -> bool:
    try:
        reply = httpx.get(f"{url}/healthz", timeout=1.0)
        body = reply.json()
    except (httpx.HTTPError, ValueError):
        return False
    return reply.status_code == 200 and isinstance(body, dict) and body.get("status") == "ok"


def port_busy(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _die_with_parent() -> None:
    """In the server's child process: SIGTERM when this launcher dies (Linux)."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def start_server(port: int, log_path: Path, data_dir: Path = DATA_DIR) -> subprocess.Popen[bytes]:
    """The server in a process group (session) of its own: the terminal's signals do not
    reach it, ``stop_server`` stops the whole group, workers included."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "backend.server.cli", "serve", "--port", str(port)]
    cmd += ["--data-dir", str(data_dir)]
    with log_path.open("ab") as log:
        return subprocess.Popen(
            cmd,
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )


def wait_healthy(url: str, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        if is_pairchat(url):
            return True
        time.sleep(0.1)
    return False


def stop_server(proc: subprocess.Popen[bytes], timeout: float = 5.0) -> None:
    """SIGTERM to the server's whole process group (it answers held waits and exits
    within a second or two), SIGKILL to what is left after ``timeout``."""
    group = proc.pid  # start_new_session: the server leads its own group
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _group_alive(group):
        proc.poll()
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group, signal.SIGKILL)
    proc.wait(timeout=10)


def _group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    return True


def _exit_on_signal(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def _stop_group(proc: subprocess.Popen[bytes] | None) -> None:
    """SIGTERM to the server's group at once (``stop_server`` waits for it later)."""
    if proc is not None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)


async def run_tui(app: PairchatApp, proc: subprocess.Popen[bytes] | None) -> None:
    """The TUI, with the stop signals handled on its loop: the server first, then the app."""
    from tui.input_order import terminal_input_fd  # Textual's, loaded with the app

    loop = asyncio.get_running_loop()

    def stop(signum: int) -> None:
        _stop_group(proc)
        app.stop_for_signal(signum)

    for signum in (signal.SIGHUP, signal.SIGTERM):
        loop.add_signal_handler(signum, stop, signum)
    hangup.watch(terminal_input_fd())  # a closed terminal whose SIGHUP a launcher kept
    await app.run_async()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tui.demo", description="pairchat demo: server + TUI as a demo user."
    )
    parser.add_argument("--user", default="alice", choices=DEMO_USERS)
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    # Until the TUI takes them over: a closed terminal or SIGTERM still runs `finally`.
    for signum in (signal.SIGHUP, signal.SIGTERM):
        signal.signal(signum, _exit_on_signal)
    url = f"http://127.0.0.1:{args.port}"
    demo_dir = Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False)) / "demo"

    made = subprocess.run(
        [sys.executable, "-m", "backend.server.cli", "demo-data", "--data-dir", str(args.data_dir)],
        cwd=REPO,
        check=False,
        stdout=subprocess.DEVNULL,
    )
    if made.returncode != 0:  # pairchat-server said why, in one line on stderr
        return made.returncode
    proc: subprocess.Popen[bytes] | None = None
    try:  # from here on, whatever ends this launcher stops the server it started
        if is_pairchat(url):
            print(f"Using the pairchat server already running at {url}.")
        elif port_busy(args.port):
            print(f"Port {args.port} is in use by something that is not pairchat.", file=sys.stderr)
            print("Stop it, or run: python -m tui.demo --port 5001", file=sys.stderr)
            return 1
        else:
            log_path = demo_dir / "server.log"
            print(f"Starting the pairchat server at {url} (log: {log_path})…")
            proc = start_server(args.port, log_path, args.data_dir)
            if not wait_healthy(url, proc):
                print(f"The server did not start; see {log_path}", file=sys.stderr)
                return 1
        from tui.app import make_app

        config = Config(
            server=url,
            user=args.user,
            password=os.environ.get("PAIRCHAT_PASSWORD") or demo_password(args.user),
            config_dir=demo_dir / args.user,
        )
        asyncio.run(run_tui(make_app(config), proc))
    finally:
        if proc is not None:
            stop_server(proc)
            print(f"Stopped the server this demo started (pid {proc.pid}).")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
