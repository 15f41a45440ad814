"""The browser door: the same TUI in a browser tab (textual-serve), one process per tab.

Each tab's websocket starts its own ``python -m tui.door`` (Textual's web driver,
the TUI's own sign-in screen, ``PAIRCHAT_REMOTE=1``) in a process group of its
own. When the tab goes (closed, reloaded, network gone: the websocket closes or
its heartbeat stops) the TUI is asked to quit, and its whole process group is
hung up and then killed if it has not ended within a grace period: no orphans.

Nothing is loaded from elsewhere: the page (``web_templates/app_index.html``,
in place of textual-serve's, which fetches a font from Google) takes its script,
styles and font from this door, and a Content-Security-Policy tells the browser
to load nothing from anywhere else. Put it behind TLS (docs/doors.md): the
sign-in screen sends a password.

Only its own pages may drive it: the page is built from the door's own URL
(``--public-url``, else the address it listens on), never from the request's
``Host``, and the websocket is refused (403, before the upgrade) unless its
``Origin`` is that URL's (or one named with ``--origin``): another site cannot
open a session in a visitor's browser. Each tab's TUI tells the API who the
visitor is (the socket's address, or the ``X-Forwarded-For`` entry a
``--trusted-proxy`` added) with the door's proof of it, and one address may
hold at most ``--tabs-per-address`` tabs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
from asyncio.subprocess import Process
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp_jinja2
import textual_serve
from aiohttp import WSMsgType, web
from textual_serve.app_service import AppService
from textual_serve.server import Server, to_int

from doors.limits import Counts
from doors.secret import client_address, client_proof
from doors.session_env import program_env, session_env

log = logging.getLogger("pairchat.door.web")

TEMPLATES = Path(__file__).with_name("web_templates")
STATIC = Path(textual_serve.__file__).with_name("static")
GRACE = 3.0
"""Seconds a tab's TUI has to quit once the tab is gone, before SIGHUP, then SIGKILL."""
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "font-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
TUI_COMMAND = (sys.executable, "-m", "tui.door")


@dataclass(frozen=True)
class WebDoorConfig:
    data_dir: Path
    api: str
    port: int = 8080
    host: str = "127.0.0.1"
    public_url: str | None = None
    """The URL users open (``https://chat.example.org``) when a TLS proxy is in front."""
    max_sessions: int = 100
    tabs_per_address: int = 10
    """Tabs one client address may have open at once (people behind one NAT share it)."""
    origins: tuple[str, ...] = ()
    """More origins whose pages may open a session (the door's own URL always may)."""
    trusted_proxies: tuple[str, ...] = ()
    """Addresses of proxies in front whose ``X-Forwarded-For`` names the client."""
    signin_idle: float = 300.0
    """Seconds without a key on the sign-in screen before the tab's session ends (0: never)."""
    idle: float = 0.0
    """The same once signed in; 0 (the default): never."""

    @property
    def sessions_dir(self) -> Path:
        return self.data_dir / "doors" / "tui"

    @property
    def base_url(self) -> str:
        """The door's own URL: ``--public-url``, else the address it listens on."""
        if self.public_url:
            return self.public_url.rstrip("/")
        host = self.host
        if host in ("", "0.0.0.0", "::"):
            host = socket.gethostname()  # listening everywhere: this machine's name
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    def allowed_origins(self) -> frozenset[str]:
        """The ``Origin`` values whose pages may open a websocket."""
        allowed = {_origin(self.base_url), *(_origin(url) for url in self.origins)}
        if not self.public_url and self.host in ("127.0.0.1", "::1", "localhost"):
            allowed |= {f"http://{name}:{self.port}" for name in ("127.0.0.1", "localhost")}
            allowed.add(f"http://[::1]:{self.port}")
        return frozenset(allowed)


def _origin(url: str) -> str:
    """The origin of ``url`` as a browser sends it: scheme://host[:port], lowercase."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    port = parts.port
    default = {"http": 80, "https": 443}.get(scheme)
    return f"{scheme}://{host}" + ("" if port in (None, default) else f":{port}")


class TabProcess(AppService):
    """One tab's TUI: started in its own process group, with the door's environment."""

    def __init__(self, *args: Any, env: dict[str, str], **kwargs: Any) -> None:
        super().__init__("pairchat", *args, **kwargs)
        self.session_env = env
        self.reader: asyncio.Task[None] | None = None
        """textual-serve's task that reads the TUI's output (``run``)."""
        self.leaving = False
        """The tab went and the door is ending its TUI."""

    async def start(self, width: int, height: int) -> None:
        await super().start(width, height)
        self.reader = self._task

    def _build_environment(self, width: int = 80, height: int = 24) -> dict[str, str]:
        served = super()._build_environment(width, height)
        keep = ("TERM_PROGRAM", "TERM_PROGRAM_VERSION", "COLUMNS", "ROWS")
        textual = {k: v for k, v in served.items() if k.startswith("TEXTUAL_") or k in keep}
        return {**program_env(), **self.session_env, **textual}

    async def _open_app_process(self, width: int = 80, height: int = 24) -> Process:
        self._process = process = await asyncio.create_subprocess_exec(
            *TUI_COMMAND,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=self._build_environment(width, height),
            start_new_session=True,
        )
        assert process.stdin is not None
        self._stdin = process.stdin
        return process

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    async def stop(self) -> None:
        """Ask the TUI to quit; hang up and kill its process group if it does not."""
        self.leaving = True
        task, self._task = self._task, None
        process = self._process
        if task is not None:
            await self._download_manager.cancel_app_downloads(app_service_id=self.app_service_id)
            await self.send_meta({"type": "quit"})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(task), GRACE)
        if process is None:
            return
        for number in (signal.SIGHUP, signal.SIGKILL):
            if process.returncode is not None:
                break
            _killpg(process.pid, number)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(process.wait(), GRACE)
        _killpg(process.pid, signal.SIGKILL)  # what the TUI left behind in its group
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


class _LeftBeforeStart(logging.Filter):
    """Drops textual-serve's "Application failed to start" for a tab that went first.

    textual-serve says it whenever a TUI ends before its first line, which is also
    what a visitor leaving while their TUI starts looks like (the door then ends it).
    A mass drop while many TUIs were starting logged one such error each, as if
    pairchat were broken; the tab's "tab ended" line is the one line for it. A TUI
    that fails on its own (its tab still open) is still reported.
    """

    def __init__(self, tabs: set[TabProcess]) -> None:
        super().__init__()
        self.tabs = tabs

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg != "Application failed to start":
            return True
        try:
            task = asyncio.current_task()
        except RuntimeError:  # no running loop
            return True
        return not any(tab.leaving and tab.reader is task for tab in self.tabs)


def _killpg(pgid: int, number: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, number)


class WebDoor(Server):
    """textual-serve's server with the door's page, environment and process handling."""

    def __init__(self, config: WebDoorConfig, secret: str) -> None:
        super().__init__(
            " ".join(TUI_COMMAND),
            host=config.host,
            port=config.port,
            title="pairchat",
            public_url=config.base_url,
            statics_path=STATIC,
            templates_path=TEMPLATES,
        )
        self.config = config
        self.secret = secret
        self.origins = config.allowed_origins()
        self.trusted = frozenset(client_address(a) for a in config.trusted_proxies)
        self.counts = Counts()
        self.tabs: set[TabProcess] = set()
        logging.getLogger("textual-serve").addFilter(_LeftBeforeStart(self.tabs))
        config.sessions_dir.mkdir(mode=0o700, parents=True, exist_ok=True)

    def initialize_logging(self) -> None:
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )

    async def _make_app(self) -> web.Application:
        app = await super()._make_app()
        app.middlewares.append(_security_headers)
        return app

    async def on_startup(self, app: web.Application) -> None:
        pass  # the banner is printed once the door listens (serve)

    def serve(self, debug: bool = False) -> None:
        """textual-serve's loop, with the banner printed once the socket listens (a client
        that reads it may connect at once)."""
        self.debug = debug
        self.initialize_logging()
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        loop.add_signal_handler(signal.SIGINT, self.request_exit)
        loop.add_signal_handler(signal.SIGTERM, self.request_exit)
        banner = f"pairchat web door on {self.config.base_url} for {self.config.api}"
        web.run_app(
            self._make_app(),
            host=self.host,
            port=self.port,
            handle_signals=False,
            loop=loop,
            print=lambda *_: print(banner, flush=True),
        )

    async def on_shutdown(self, app: web.Application) -> None:
        await asyncio.gather(*(tab.stop() for tab in list(self.tabs)))

    @aiohttp_jinja2.template("app_index.html")
    async def handle_index(self, request: web.Request) -> dict[str, Any]:
        """The page: the terminal, the websocket's URL, this door's static files, all from
        the door's own URL (never the request's Host)."""
        base = self.config.base_url
        websocket = ("wss:" if base.startswith("https:") else "ws:") + base.split(":", 1)[1]
        return {
            "font_size": to_int(request.query.get("fontsize", "16"), 16),
            "app_websocket_url": f"{websocket}/ws",
            "config": {"static": {"url": f"{base}/static/"}},
            "application": {"name": self.title},
            "index_url": f"{base}/",
        }

    def client_of(self, request: web.Request) -> str:
        """The visitor's address: the socket's, or what a trusted proxy says it is."""
        peer = request.transport.get_extra_info("peername") if request.transport else None
        address = client_address(str(peer[0])) if peer else "unknown"
        if address not in self.trusted:
            return address
        hops = [
            h.strip() for h in ",".join(request.headers.getall("X-Forwarded-For", [])).split(",")
        ]
        for hop in reversed([h for h in hops if h]):  # the nearest first: the proxy's own entry
            try:
                hop = client_address(hop)
            except ValueError:
                return address  # a malformed entry: believe only the socket
            if hop not in self.trusted:
                return hop
        return address

    async def handle_websocket(self, request: web.Request) -> web.WebSocketResponse:
        client = self.client_of(request)
        origin = request.headers.get("Origin", "")
        if origin.lower().rstrip("/") not in self.origins:
            log.warning("%s: websocket refused: Origin %r is not this door's", client, origin)
            raise web.HTTPForbidden(text="this door serves only its own pages\n")
        websocket = web.WebSocketResponse(heartbeat=15)
        await websocket.prepare(request)
        held = self.counts.take(
            {"tabs": self.config.max_sessions, f"tabs-from:{client}": self.config.tabs_per_address}
        )
        if held is None:
            if self.counts.count(f"tabs-from:{client}") >= self.config.tabs_per_address:
                why = "too many pairchat tabs are open from your address; close one and try again"
            else:
                why = "pairchat is full right now; try again in a minute"
            log.info("%s: tab refused: %s", client, why)
            await websocket.send_bytes(why.encode() + b"\r\n")
            await websocket.close()
            return websocket
        env = session_env(
            api=self.config.api,
            config_dir=self.config.sessions_dir,
            truecolor=True,
            visitor=(client, client_proof(self.secret, client)) if client != "unknown" else None,
            signin_idle=self.config.signin_idle,
            idle=self.config.idle,
            session=held.session,
        )
        tab = TabProcess(
            write_bytes=websocket.send_bytes,
            write_str=websocket.send_str,
            close=websocket.close,
            download_manager=self.download_manager,
            env=env,
        )
        self.tabs.add(tab)
        try:
            width = to_int(request.query.get("width", "80"), 80)
            height = to_int(request.query.get("height", "24"), 24)
            await tab.start(width, height)
            log.info("%s: tab started (pid %s)", client, tab.pid)
            await _pump(websocket, tab)
        except Exception:
            log.exception("%s: the tab failed", client)
        finally:
            await tab.stop()
            self.tabs.discard(tab)
            held.release()
            log.info("%s: tab ended (pid %s)", client, tab.pid)
            await websocket.close()
        return websocket


async def _pump(websocket: web.WebSocketResponse, tab: TabProcess) -> None:
    """The browser's keys, sizes and focus to the TUI, until the tab goes."""
    async for message in websocket:
        if message.type != WSMsgType.TEXT:
            continue
        try:
            kind, data = message.json()
        except (ValueError, TypeError):
            continue
        if kind == "stdin" and isinstance(data, str):
            await tab.send_bytes(data.encode("utf-8"))
        elif kind == "resize" and isinstance(data, dict):
            await tab.set_terminal_size(
                to_int(str(data.get("width")), 80), to_int(str(data.get("height")), 24)
            )
        elif kind == "ping":
            await websocket.send_json(["pong", data])
        elif kind == "blur":
            await tab.blur()
        elif kind == "focus":
            await tab.focus()


@web.middleware
async def _security_headers(request: web.Request, handler: Any) -> web.StreamResponse:
    response: web.StreamResponse = await handler(request)
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    return response


def run_web_door(config: WebDoorConfig, secret: str) -> None:
    """Serve until SIGTERM/SIGINT (textual-serve's loop), hanging up every tab at the end."""
    WebDoor(config, secret).serve()
