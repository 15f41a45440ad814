"""``python -m tui.door``: the TUI as a door starts it for one session (SSH or browser).

The same program as ``pairchat``, configured by the door through the environment
instead of flags and a config file the user could edit:

- ``PAIRCHAT_SERVER``: the API the session talks to (usually http://127.0.0.1:PORT);
- ``PAIRCHAT_CONFIG_DIR``: where this user's outbox, drafts and preferences live
  (a folder the door keeps per user, inside its data folder);
- ``PAIRCHAT_USER`` and ``PAIRCHAT_TOKEN``: the account the door signed in (a known
  SSH key); without them the session starts on the sign-in screen;
- ``PAIRCHAT_DOOR_TICKET``: an unknown SSH key's one-time ticket, for the "claim a
  username" screen;
- ``PAIRCHAT_REMOTE=1``: links are copied, not opened (a browser here would open on
  the server);
- ``PAIRCHAT_CLIENT_ADDRESS`` and ``PAIRCHAT_CLIENT_PROOF``: who the visitor is (the SSH
  client's or the browser's address) and the door's HMAC vouching for it; sent with
  every request (``X-Pairchat-Client``, ``X-Pairchat-Client-Proof``) so the API's
  per-address limits count the visitor, not the door. The proof names that one address:
  the session never holds the door secret;
- ``PAIRCHAT_SESSION_ID``: the door's id of this session (``ssh-1a2b3c4d``), logged by the
  door when the session opens and ends; sent as ``X-Request-Id`` on every API call, so
  the server's request log ties the session to its calls;
- ``PAIRCHAT_SIGNIN_IDLE``: seconds without a key on a screen that is not signed in
  (sign-in, claim) after which the session ends (0: never); ``PAIRCHAT_IDLE``: the same
  for a signed-in session (0, the default: never).

The token is never written to disk here: the session keeps it in memory only.

``python -m tui.door --factory SOCKET`` is the SSH door's session factory: it
loads the TUI once and forks this same ``main()`` for each session the door
sends it (doors/factory.py), so sessions share the loaded code's memory.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

from protocol.door_proof import CLIENT_HEADER, PROOF_HEADER
from tui.config import Config, load_config

if TYPE_CHECKING:
    from tui.app import PairchatApp

IDLE_MESSAGE = "pairchat: the session ended after {minutes} without a key pressed"
SIGN_IN_MESSAGE = "pairchat: the session ended: nobody signed in within {minutes}"
SIGN_IN_CAP = 3
"""Idle periods a session that is not signed in may last in all, keys or not."""


def _words(seconds: float) -> str:
    minutes = round(seconds / 60)
    return f"{minutes} minute{'s' if minutes != 1 else ''}" if minutes else f"{seconds:g} s"


def door_headers(env: dict[str, str] | os._Environ[str]) -> dict[str, str]:
    """The headers that tell the API who this door's visitor is and which door session
    calls (none outside a door)."""
    headers = {}
    session = env.get("PAIRCHAT_SESSION_ID", "").strip()
    if session:
        headers[REQUEST_ID_HEADER] = session
    address = env.get("PAIRCHAT_CLIENT_ADDRESS", "").strip()
    proof = env.get("PAIRCHAT_CLIENT_PROOF", "").strip()
    if address and proof:
        headers |= {CLIENT_HEADER: address, PROOF_HEADER: proof}
    return headers


REQUEST_ID_HEADER = "X-Request-Id"


def _seconds(env: dict[str, str] | os._Environ[str], name: str, default: float) -> float:
    try:
        value = float(env.get(name, "") or default)
    except ValueError:
        return default
    return value if value > 0 else 0.0


def main() -> int:
    config = load_config()
    config.remember_session = False
    config.local_files = False  # the server's machine: no path of it is the visitor's
    command = os.environ.get("PAIRCHAT_DOOR_COMMAND")
    if command:  # ssh HOST send|history|tail …: a script's command, on pipes
        return run_command(command, config)
    token = os.environ.get("PAIRCHAT_TOKEN") or None
    user = os.environ.get("PAIRCHAT_USER") or None
    from tui.app import make_app  # Textual loads only when the app runs
    from tui.client.http import PairchatClient

    ticket = os.environ.get("PAIRCHAT_DOOR_TICKET") or None
    given = (user, token) if user and token else None
    client = PairchatClient(config.server, headers=door_headers(os.environ))
    app = make_app(config, client, signals=True, token=given, ticket=ticket)
    watch_idle(
        app,
        signed_out=_seconds(os.environ, "PAIRCHAT_SIGNIN_IDLE", 0),
        signed_in=_seconds(os.environ, "PAIRCHAT_IDLE", 0),
    )
    app.run()
    return 0


def run_command(command: str, config: Config) -> int:
    """One of ``pairchat``'s script commands (tui/scripting.py), as the door's user."""
    import json

    from tui.scripting import EXIT_USAGE, run_door_command

    try:
        words = [str(word) for word in json.loads(command)]
    except (ValueError, TypeError):
        print("pairchat: bad command", file=sys.stderr)
        return EXIT_USAGE
    return run_door_command(words, config, headers=door_headers(os.environ))


def watch_idle(app: PairchatApp, *, signed_out: float, signed_in: float) -> None:
    """End ``app`` after ``signed_out`` seconds without input while no one is signed in
    (the sign-in and claim screens), or ``signed_in`` seconds once someone is (0: never).

    A session that is not signed in also ends ``SIGN_IN_CAP`` idle periods after it
    began, keys or not: a sign-in takes a minute, and a squatter pressing a key every
    few minutes would otherwise hold a door slot for good."""
    if not signed_out and not signed_in:
        return
    from textual import events

    started = time.monotonic()
    last = [started]
    handle = app.on_event
    step = min(1.0, max(0.1, min(x for x in (signed_out, signed_in) if x) / 4))

    def over() -> str | None:
        """Why the session ends now, if it does."""
        now = time.monotonic()
        if app.client.token:
            limit = signed_in
        elif signed_out and now - started >= SIGN_IN_CAP * signed_out:
            return SIGN_IN_MESSAGE.format(minutes=_words(SIGN_IN_CAP * signed_out))
        else:
            limit = signed_out
        if limit and now - last[0] >= limit:
            return IDLE_MESSAGE.format(minutes=_words(limit))
        return None

    def end() -> bool:
        message = over()
        if message is None:
            return False  # a key came in meanwhile
        app.exit(return_code=0, message=message)
        return True

    def watch() -> None:
        while True:
            time.sleep(step)
            if over() is not None and app.is_running:
                try:
                    if app.call_from_thread(end):
                        return
                except RuntimeError:  # the app is ending anyway
                    return

    async def on_event(event: Any) -> None:
        if isinstance(event, (events.Key, events.Paste, events.MouseDown)):
            last[0] = time.monotonic()
        await handle(event)

    threading.Thread(target=watch, name="pairchat-idle", daemon=True).start()
    app.on_event = on_event  # type: ignore[method-assign]


def factory(path: str) -> int:
    """Load the TUI and what a running session imports, then serve sessions on ``path``."""
    import textual.drivers.linux_driver
    import textual.layouts.horizontal
    import textual.scrollbar  # noqa: F401

    import tui.app  # noqa: F401
    from doors.factory import serve

    return serve(path, main)


def hang_up_with_door() -> None:
    """A session started by a door (the browser door's tab) ends with that door, even killed.

    On Linux the kernel sends SIGHUP, which ends the app (tui/app.py), when the door's
    thread that started this process dies (``PR_SET_PDEATHSIG``); a door already gone
    ends it now. Before, a killed browser door left every tab's TUI under init, its
    input at EOF, spinning for good. (The SSH door's factory-forked sessions do not
    come this way: their pty's hangup ends them.)
    """
    if sys.platform != "linux":
        return
    import ctypes
    import signal

    door = os.getppid()
    try:  # libc's own prctl, among the running program's symbols
        ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGHUP)
    except (OSError, AttributeError):
        return
    if door == 1 or os.getppid() != door:
        sys.exit(129)


_PR_SET_PDEATHSIG = 1

if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--factory":
        sys.exit(factory(sys.argv[2]))
    hang_up_with_door()
    sys.exit(main())
