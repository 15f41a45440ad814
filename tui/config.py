"""Client configuration: flags > ``PAIRCHAT_*`` environment > config file > defaults.

Everything the client keeps lives in one folder (``platformdirs`` user config dir,
or ``PAIRCHAT_CONFIG_DIR``):

- ``config.toml`` — the user's settings (``server``, ``user``, a ``[keymap]`` table
  of binding id -> keys). Read with :mod:`tomllib`; the client never rewrites it.
- ``session.toml`` — the sign-in token per server, owner-only (0600), so a restart
  stays signed in.
- ``outbox-<user>.json`` — messages typed but not yet delivered (:mod:`tui.core.outbox`);
- ``drafts-<user>.json`` — what was typed in each chat and not sent (:mod:`tui.core.drafts`).

Settings of ``config.toml``: ``server``, ``user``, ``layout`` (``"compact"`` for one
line per message; the default is ``"cozy"``), ``bell`` (``"off"``, ``"other"``,
``"all"``), ``notify`` (``"off"``, ``"osc9"``, ``"osc777"``), ``download_dir`` (where a
received file is saved; ``PAIRCHAT_DOWNLOAD_DIR``; default the desktop's download
folder) and ``[keymap]``.
"""

from __future__ import annotations

import contextlib
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import platformdirs

from tui.alerts import BELL_POLICIES
from tui.alerts import KINDS as NOTIFY_KINDS

DEFAULT_SERVER = "http://127.0.0.1:5000"
APP_NAME = "pairchat"
CONFIG_FILE = "config.toml"
SESSION_FILE = "session.toml"


@dataclass
class Config:
    server: str = DEFAULT_SERVER
    user: str | None = None
    password: str | None = None
    config_dir: Path = field(default_factory=lambda: default_config_dir())
    keymap: dict[str, str] = field(default_factory=dict)
    compact: bool = False
    bell: str = "other"
    """When to ring: ``off``, ``other`` (chats not on screen) or ``all`` (see tui.alerts)."""
    notify: str = "off"
    """Desktop notifications by escape sequence: ``off``, ``osc9`` or ``osc777``."""
    poll_wait: float = 50.0
    """Seconds the server may hold the change feed's long-poll."""
    first_event_timeout: float = 5.0
    """Seconds the event stream's first event may take before a buffering proxy is
    suspected (tui.core.feed)."""
    remember_session: bool = True
    """Save the token in ``session.toml`` (a door keeps it in memory only)."""
    download_dir: Path = field(default_factory=lambda: default_download_dir())
    """Where a received file is saved (made when first needed)."""
    local_files: bool = True
    """Files are the user's own: Ctrl+O sends one, ``s`` saves one. A door (tui/door.py)
    turns this off: its TUI runs on the server's machine, where a path would read the
    server's files and a save would write to its disk."""

    @property
    def session_path(self) -> Path:
        return self.config_dir / SESSION_FILE

    def outbox_path(self, username: str) -> Path:
        return self.config_dir / f"outbox-{username.lower()}.json"

    def drafts_path(self, username: str) -> Path:
        return self.config_dir / f"drafts-{username.lower()}.json"

    def prefs_path(self, username: str) -> Path:
        return self.config_dir / f"prefs-{username.lower()}.json"

    # -- the saved session -----------------------------------------------------
    def saved_session(self) -> tuple[str, str] | None:
        """(username, token) saved for this server, if any (and for ``user`` if set)."""
        sessions = _read_toml(self.session_path).get("sessions", {})
        entry = sessions.get(self.server) if isinstance(sessions, dict) else None
        if not isinstance(entry, dict):
            return None
        username, token = entry.get("username"), entry.get("token")
        if not isinstance(username, str) or not isinstance(token, str) or not token:
            return None
        if self.user and self.user.lower() != username.lower():
            return None
        return username, token

    def save_session(self, username: str, token: str) -> None:
        if not self.remember_session:
            return
        data = _read_toml(self.session_path)
        sessions = data.get("sessions")
        if not isinstance(sessions, dict):
            sessions = {}
        sessions[self.server] = {"username": username, "token": token}
        write_private(self.session_path, dump_toml({"sessions": sessions}))

    def forget_session(self) -> None:
        data = _read_toml(self.session_path)
        sessions = data.get("sessions")
        if isinstance(sessions, dict) and sessions.pop(self.server, None) is not None:
            write_private(self.session_path, dump_toml({"sessions": sessions}))


def default_config_dir(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    override = env.get("PAIRCHAT_CONFIG_DIR")
    if override:
        return Path(override).expanduser()
    return Path(platformdirs.user_config_dir(APP_NAME, appauthor=False))


def default_download_dir(env: Mapping[str, str] | None = None) -> Path:
    """``PAIRCHAT_DOWNLOAD_DIR``, else the desktop's download folder (``~/Downloads`` on a
    system without one: platformdirs)."""
    env = os.environ if env is None else env
    override = env.get("PAIRCHAT_DOWNLOAD_DIR")
    if override:
        return Path(override).expanduser()
    return Path(platformdirs.user_downloads_dir())


def load_config(
    server: str | None = None,
    user: str | None = None,
    env: Mapping[str, str] | None = None,
    config_dir: Path | None = None,
) -> Config:
    """Merge the sources in order of precedence: arguments, environment, file, defaults."""
    env = os.environ if env is None else env
    folder = config_dir or default_config_dir(env)
    file = _read_toml(folder / CONFIG_FILE)

    def pick(flag: str | None, env_name: str, key: str) -> str | None:
        if flag:
            return flag
        if env.get(env_name):
            return env[env_name]
        value = file.get(key)
        return value if isinstance(value, str) and value else None

    keymap = file.get("keymap", {})
    layout = pick(None, "PAIRCHAT_LAYOUT", "layout") or "cozy"
    bell = (pick(None, "PAIRCHAT_BELL", "bell") or "other").lower()
    notify = (pick(None, "PAIRCHAT_NOTIFY", "notify") or "off").lower()
    downloads = pick(None, "PAIRCHAT_DOWNLOAD_DIR", "download_dir")
    return Config(
        server=(pick(server, "PAIRCHAT_SERVER", "server") or DEFAULT_SERVER).rstrip("/"),
        user=pick(user, "PAIRCHAT_USER", "user"),
        password=env.get("PAIRCHAT_PASSWORD") or None,
        config_dir=folder,
        keymap={str(k): str(v) for k, v in keymap.items()} if isinstance(keymap, dict) else {},
        compact=layout.lower() == "compact",
        bell=bell if bell in BELL_POLICIES else "other",
        notify=notify if notify in NOTIFY_KINDS else "off",
        download_dir=Path(downloads).expanduser() if downloads else default_download_dir(env),
    )


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError):
        return {}


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    text = str(value)
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    escaped = "".join(c if c >= " " or c == "\t" else f"\\u{ord(c):04x}" for c in escaped)
    return f'"{escaped}"'


def _toml_key(key: str) -> str:
    if key and all(c.isalnum() or c in "-_" for c in key) and key.isascii():
        return key
    return _toml_value(key)


def dump_toml(data: Mapping[str, Any], prefix: str = "") -> str:
    """A small TOML writer: scalars first, then nested tables (enough for our files)."""
    lines: list[str] = []
    tables: list[tuple[str, Mapping[str, Any]]] = []
    for key, value in data.items():
        if isinstance(value, Mapping):
            tables.append((key, value))
        else:
            lines.append(f"{_toml_key(key)} = {_toml_value(value)}")
    for key, table in tables:
        name = f"{prefix}.{_toml_key(key)}" if prefix else _toml_key(key)
        has_scalars = any(not isinstance(v, Mapping) for v in table.values())
        if has_scalars or not table:
            lines.append(f"\n[{name}]")
        lines.append(dump_toml(table, name).rstrip("\n"))
    return "\n".join(line for line in lines if line != "").strip("\n") + "\n"


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically, readable by the owner only (0600)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(OSError):
        path.parent.chmod(0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
