"""The environment a door gives the TUI of one session (``python -m tui.door``).

Built from nothing, not from the door's own environment: the door's secrets
never reach a session, and the user's SSH client decides only what a terminal
may decide (TERM, whether it has 24-bit colour).

``VISUAL``/``EDITOR`` name a program that does not exist: Ctrl+E would otherwise
run ``vi`` on the server, and an editor can run a shell. The TUI then says it
cannot open the editor, and the message box stays as it was.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from doors.limits import CURRENT_SESSION

SAFE_PATH = "/usr/local/bin:/usr/bin:/bin"
NO_EDITOR = "no-editor-in-pairchat-doors"
TRUECOLOR_WORDS = ("truecolor", "24bit", "direct")


@dataclass(frozen=True)
class Identity:
    """Who the session is: a known key (user and token) or a new key's one-time ticket."""

    username: str | None = None
    token: str | None = None
    ticket: str | None = None


def wants_truecolor(term: str, client_env: Mapping[str, str]) -> bool:
    """True if the client says it draws 24-bit colour (COLORTERM, or a TERM such as
    ``xterm-direct``)."""
    colorterm = client_env.get("COLORTERM", "").lower()
    return colorterm in ("truecolor", "24bit") or any(w in term.lower() for w in TRUECOLOR_WORDS)


def session_env(
    *,
    api: str,
    config_dir: Path,
    term: str = "xterm-256color",
    truecolor: bool = False,
    identity: Identity | None = None,
    lang: str = "C.UTF-8",
    visitor: tuple[str, str] | None = None,
    signin_idle: float = 0.0,
    idle: float = 0.0,
    session: str | None = None,
) -> dict[str, str]:
    """The session's environment; ``visitor`` is (the client's address, the door's proof
    of it), ``signin_idle``/``idle`` the seconds without input that end a session that is
    not / is signed in (0: never), ``session`` its id (``doors/limits.py``; when not
    given, that of the session taken last in this context: the SSH door makes its
    session's task right after the take), sent on every API call as ``X-Request-Id``."""
    env = {
        "PATH": SAFE_PATH,
        "HOME": str(config_dir),
        "LANG": lang,
        "LC_ALL": lang,
        "PYTHONUTF8": "1",
        "TERM": _clean_term(term),
        "PAIRCHAT_SERVER": api,
        "PAIRCHAT_CONFIG_DIR": str(config_dir),
        "PAIRCHAT_REMOTE": "1",
        "VISUAL": NO_EDITOR,
        "EDITOR": NO_EDITOR,
    }
    if truecolor:
        env["COLORTERM"] = "truecolor"
    session = session or CURRENT_SESSION.get()
    if session:
        env["PAIRCHAT_SESSION_ID"] = session
    if visitor is not None:
        env["PAIRCHAT_CLIENT_ADDRESS"], env["PAIRCHAT_CLIENT_PROOF"] = visitor
    if signin_idle > 0:
        env["PAIRCHAT_SIGNIN_IDLE"] = f"{signin_idle:g}"
    if idle > 0:
        env["PAIRCHAT_IDLE"] = f"{idle:g}"
    if identity is not None:
        if identity.username and identity.token:
            env["PAIRCHAT_USER"] = identity.username
            env["PAIRCHAT_TOKEN"] = identity.token
        elif identity.ticket:
            env["PAIRCHAT_DOOR_TICKET"] = identity.ticket
    return env


def program_env() -> dict[str, str]:
    """What the TUI program itself needs to start (the Python of this door), nothing else."""
    env = {"PATH": SAFE_PATH, "LANG": "C.UTF-8", "PYTHONUTF8": "1"}
    for name in ("PYTHONPATH", "VIRTUAL_ENV"):
        if os.environ.get(name):
            env[name] = os.environ[name]
    return env


def _clean_term(term: str) -> str:
    """A TERM value a terminfo lookup can take: short, no path characters."""
    ok = term and len(term) <= 64 and all(c.isalnum() or c in "-+._" for c in term)
    return term if ok else "xterm-256color"
