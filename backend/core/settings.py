"""Server settings: one typed, frozen object, read once.

Precedence: command-line flags > ``PAIRCHAT_<NAME>`` environment variables >
the defaults below. ``Settings.from_env`` reads the environment (and takes the
flags as keyword overrides); nothing else in the backend reads ``os.environ``.
The object goes to ``build_services`` and ``create_app``, and the CLI hands it
to granian's workers directly. docs/architecture.md says how to add one.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import UnionType
from typing import Any, get_args, get_type_hints

import platformdirs
from limits import parse as parse_rate_limit

ENV_PREFIX = "PAIRCHAT_"
APP_NAME = "pairchat"


def source_tree() -> Path | None:
    """The checkout this code runs from (pyproject.toml of pairchat beside backend/), if any.

    ``uv sync`` installs the project editable, so the checkout's code runs from the
    checkout; an installed wheel lives in site-packages, with no pyproject.toml beside it.
    """
    root = Path(__file__).resolve().parents[2]  # backend/core/settings.py
    try:
        with (root / "pyproject.toml").open("rb") as file:
            name = tomllib.load(file).get("project", {}).get("name")
    except (OSError, tomllib.TOMLDecodeError):
        return None
    return root if name == APP_NAME else None


def default_data_dir() -> Path:
    """``./conversations`` in a checkout (``./run demo``, ``./run serve``); installed, the
    user data folder (``~/.local/share/pairchat/conversations`` on Linux, platformdirs)."""
    root = source_tree()
    if root is not None:
        return root / "conversations"
    return platformdirs.user_data_path(APP_NAME, appauthor=False) / "conversations"


DEFAULT_DATA_DIR = default_data_dir()
SYNCHRONOUS_MODES = ("NORMAL", "FULL", "EXTRA")
# Worker threads no long-poll may take: sends and logins always find one.
THREAD_RESERVE = 64
UNPLANNED_WAITERS = 1000
"""Held requests where no capacity was planned: ``--dev`` (a thread each) and tests."""
REGISTRATION_MODES = ("open", "invite", "closed")
DAY = 24 * 3600
UPLOAD_FRAMING = 64 * 1024  # bytes of a file upload's body besides the file


class SettingsError(ValueError):
    """A setting with a value the server cannot run with; the text names it."""


@dataclass(frozen=True)
class Settings:
    # where the data lives and who may use it
    data_dir: Path = DEFAULT_DATA_DIR
    open_mode: bool = False  # the seed's unauthenticated conversation routes
    allow_open_public: bool = False  # open mode on a non-loopback address: a second, explicit yes
    allowed_hosts: str = ""  # open mode: Host names accepted besides loopback (comma-separated)
    trusted_proxies: int = 0  # proxies in front whose X-Forwarded-For is believed (ProxyFix)
    # the production server (granian, ASGI front)
    host: str = "127.0.0.1"
    port: int = 5000
    workers: int = 1
    # held clients per worker: by default from the open-files limit (backend/server/capacity.py)
    threads: int | None = None  # the old knob: held waits = threads - 64 (Flask runs on 64)
    max_connections: int | None = None  # open connections per worker (idle ones included)
    header_timeout: float = (
        10.0  # seconds to send a request's headers; also the keep-alive idle time
    )
    body_timeout: float = 10.0  # seconds to send a request's body
    # requests
    max_content_length: int = 64 * 1024  # bytes of a request body
    max_wait: float = 60.0  # long-poll cap, seconds
    max_waiters: int | None = None  # held streams and long-polls at once; None: see capacity.py
    max_waits_per_user: int = 4  # held long-polls and streams per user; a newer one ends the oldest
    stream_heartbeat: float = 25.0  # seconds between an idle event stream's keep-alive comments
    typing_seconds: float = 5.0  # how long a typing signal shows ("bob is typing…")
    # the doors beside the API (backend/server/door_processes.py): ports, or None for none
    ssh_port: int | None = None  # the SSH door: the TUI per SSH session, the key is the account
    web_port: int | None = None  # the browser door: the TUI in a browser tab
    # the browser door's own URL (its page and the websocket Origin it accepts);
    # required when it listens on every address (--host 0.0.0.0): a guess would refuse browsers
    web_public_url: str = ""
    # the SSH door's secret (X-Pairchat-Door); empty: door.secret in the data folder
    door_secret: str = dataclasses.field(default="", repr=False)
    # multi-node mode (docs/cluster.md): all three set, or none (one box)
    node: str = ""  # this node's name in the placement map (letters, digits, hyphens)
    # postgresql://…: accounts, the feed, the placement map
    database_url: str = dataclasses.field(default="", repr=False)
    redis_url: str = ""  # redis://…: wake-ups across nodes
    # accounts
    registration: str = "open"  # open | invite (codes from `pairchat-server invite`) | closed
    register_rate_limit: str = "10 per hour"  # registrations per client address
    login_rate_limit: str = "10 per minute"  # failed logins per client address
    token_idle_timeout: int = 30 * DAY  # seconds a token may go unused; 0: never expires
    hash_concurrency: int = 1  # argon2 computations at once per worker (each uses 4 lanes)
    hash_queue: int = 8  # password checks that may wait for one
    hash_per_address: int = 2  # password checks running or waiting per client address
    # quotas
    send_rate_limit: str = "120 per minute"  # messages per user
    new_conversation_rate_limit: str = "20 per hour"  # first messages to people who did not add you
    min_free_disk_mb: int = 64  # below this much free space, writes are refused (503)
    # files (POST /send_file): stored in the pair's own file (backend/storage/attachments.py)
    max_file_bytes: int = 25 * 1024 * 1024  # bytes of one file
    pair_files_quota: int = 1024**3  # bytes of files in one pair
    user_files_quota: int = 2 * 1024**3  # bytes of files one user has sent, all pairs
    # storage
    max_open_conversations: int = 512
    sqlite_synchronous: str = "NORMAL"  # FULL survives power loss, not just crashes
    watch_interval: float = 0.025  # seconds between checks for other workers' sends; 0: off
    # argon2id cost; tests lower it (the hash stays argon2id, just cheaper)
    argon2_time_cost: int = 3
    argon2_memory_cost: int = 65536

    def __post_init__(self) -> None:
        object.__setattr__(self, "data_dir", Path(self.data_dir))
        object.__setattr__(self, "sqlite_synchronous", self.sqlite_synchronous.upper())
        if self.sqlite_synchronous not in SYNCHRONOUS_MODES:
            raise SettingsError("sqlite_synchronous must be NORMAL, FULL or EXTRA")
        if self.threads is not None and self.threads <= THREAD_RESERVE:
            raise SettingsError(f"threads must be more than {THREAD_RESERVE}")
        if self.max_connections is not None and self.max_connections < 1:
            raise SettingsError("max_connections must be at least 1")
        if self.workers < 1:
            raise SettingsError("workers must be at least 1")
        if not 0 <= self.port <= 65535:
            raise SettingsError("port must be 0-65535")
        for name in ("ssh_port", "web_port"):
            door_port = getattr(self, name)
            if door_port is not None and not 1 <= door_port <= 65535:
                raise SettingsError(f"{name} must be 1-65535")
        ports = [p for p in (self.port, self.ssh_port, self.web_port) if p is not None]
        if len(ports) != len(set(ports)):
            raise SettingsError("port, ssh_port and web_port must differ")
        if self.max_waiters is not None and self.max_waiters < 0:
            raise SettingsError("max_waiters must be 0 or more")
        if not (self.max_wait >= 0 and self.watch_interval >= 0):  # NaN fails too
            raise SettingsError("max_wait and watch_interval must be 0 or more")
        if not 0.05 <= self.stream_heartbeat <= 300:  # NaN fails too
            raise SettingsError("stream_heartbeat must be 0.05-300 s")
        if not 0.5 <= self.typing_seconds <= 60:
            raise SettingsError("typing_seconds must be 0.5-60")
        if self.max_content_length < 1 or self.max_open_conversations < 1:
            raise SettingsError("max_content_length and max_open_conversations must be positive")
        if min(self.max_file_bytes, self.pair_files_quota, self.user_files_quota) < 1:
            raise SettingsError(
                "max_file_bytes, pair_files_quota and user_files_quota must be positive"
            )
        for name in (
            "max_waits_per_user",
            "hash_concurrency",
            "hash_per_address",
        ):
            if getattr(self, name) < 1:
                raise SettingsError(f"{name} must be at least 1")
        for name in ("trusted_proxies", "hash_queue", "token_idle_timeout", "min_free_disk_mb"):
            if getattr(self, name) < 0:
                raise SettingsError(f"{name} must be 0 or more")
        if not (0 < self.header_timeout <= 60 and 0 < self.body_timeout <= 600):
            raise SettingsError("header_timeout must be 0-60 s and body_timeout 0-600 s")
        cluster = [bool(self.node), bool(self.database_url), bool(self.redis_url)]
        if any(cluster) and not all(cluster):
            raise SettingsError("multi-node mode needs node, database_url and redis_url together")
        if self.node and not re.fullmatch(r"[A-Za-z0-9](?:-?[A-Za-z0-9])*", self.node):
            raise SettingsError("node must be letters, digits and inner hyphens")
        if self.registration not in REGISTRATION_MODES:
            raise SettingsError("registration must be open, invite or closed")
        for name in (
            "login_rate_limit",
            "register_rate_limit",
            "send_rate_limit",
            "new_conversation_rate_limit",
        ):
            try:
                parse_rate_limit(getattr(self, name))
            except ValueError:
                raise SettingsError(
                    f"{name} {getattr(self, name)!r} is not a rate like '10 per minute'"
                ) from None

    @property
    def upload_body_limit(self) -> int:
        """Bytes of a ``POST /send_file`` body: one file of ``max_file_bytes`` and room for
        the multipart framing and the other fields (a caption of 4,000 characters); the
        file's own size is then checked exactly while it is read."""
        return self.max_file_bytes + UPLOAD_FRAMING

    @property
    def multi_node(self) -> bool:
        """Accounts, feed and placement in PostgreSQL, wake-ups through Redis."""
        return bool(self.node)

    @property
    def waiter_slots(self) -> int:
        """How many streams and long-polls may be held at once (past it, a ``wait`` answers
        at once and a stream is refused, both with ``Retry-After``). ``pairchat-server``
        fills ``max_waiters`` in from the open-files limit (``backend/server/capacity.py``);
        without it (``--dev``, the tests' servers) ``UNPLANNED_WAITERS``."""
        if self.max_waiters is not None:
            return self.max_waiters
        if self.threads is not None:
            return self.threads - THREAD_RESERVE
        return UNPLANNED_WAITERS

    @classmethod
    def from_env(cls, environ: Mapping[str, str], **flags: Any) -> Settings:
        """Defaults, then ``PAIRCHAT_<NAME>`` from ``environ``, then ``flags`` (by field name)."""
        hints = get_type_hints(cls)
        values: dict[str, Any] = {}
        for field in dataclasses.fields(cls):
            name = ENV_PREFIX + field.name.upper()
            raw = environ.get(name, "").strip()
            if raw:
                values[field.name] = _parse(name, raw, hints[field.name])
        unknown = set(flags) - set(hints)
        if unknown:
            raise SettingsError(f"no such setting: {', '.join(sorted(unknown))}")
        values.update(flags)
        return cls(**values)

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)

    @property
    def extra_hosts(self) -> list[str]:
        return [name.strip().lower() for name in self.allowed_hosts.split(",") if name.strip()]


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or ``localhost``) can only be reached from this machine."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _parse(name: str, raw: str, kind: Any) -> Any:
    if isinstance(kind, UnionType):  # ``int | None``: an empty value never gets here
        kind = next(arg for arg in get_args(kind) if arg is not type(None))
    parser = _PARSERS[kind]
    try:
        return parser(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r}: {_EXPECTED[kind]}") from None


def _boolean(raw: str) -> bool:
    value = raw.lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError(raw)


_PARSERS: dict[Any, Callable[[str], Any]] = {
    bool: _boolean,
    int: int,
    float: float,
    str: str,
    Path: Path,
}
_EXPECTED = {
    bool: "expected true or false",
    int: "expected a whole number",
    float: "expected a number",
    str: "expected text",
    Path: "expected a path",
}
