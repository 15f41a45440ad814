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
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from asyncio.subprocess import Process
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp_jinja2
import textual_serve
from aiohttp import WSMsgType, web
from textual_serve.app_service import AppService
from textual_serve.server import Server, to_int

from doors.limits import Counts
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

    @property
    def sessions_dir(self) -> Path:
        return self.data_dir / "doors" / "tui"


class TabProcess(AppService):
    """One tab's TUI: started in its own process group, with the door's environment."""

    def __init__(self, *args: Any, env: dict[str, str], **kwargs: Any) -> None:
        super().__init__("pairchat", *args, **kwargs)
        self.session_env = env

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


def _killpg(pgid: int, number: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, number)


class WebDoor(Server):
    """textual-serve's server with the door's page, environment and process handling."""

    def __init__(self, config: WebDoorConfig) -> None:
        super().__init__(
            " ".join(TUI_COMMAND),
            host=config.host,
            port=config.port,
            title="pairchat",
            public_url=config.public_url.rstrip("/") if config.public_url else None,
            statics_path=STATIC,
            templates_path=TEMPLATES,
        )
        self.config = config
        self.counts = Counts()
        self.tabs: set[TabProcess] = set()
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
        where = self.config.public_url or f"http://{self.config.host}:{self.config.port}"
        print(f"pairchat web door on {where} for {self.config.api}", flush=True)

    async def on_shutdown(self, app: web.Application) -> None:
        await asyncio.gather(*(tab.stop() for tab in list(self.tabs)))

    @aiohttp_jinja2.template("app_index.html")
    async def handle_index(self, request: web.Request) -> dict[str, Any]:
        """The page: the terminal, the websocket's URL, this door's static files."""
        base = self.config.public_url or f"{request.scheme}://{request.host}"
        base = base.rstrip("/")
        websocket = ("wss:" if base.startswith("https:") else "ws:") + base.split(":", 1)[1]
        return {
            "font_size": to_int(request.query.get("fontsize", "16"), 16),
            "app_websocket_url": f"{websocket}/ws",
            "config": {"static": {"url": f"{base}/static/"}},
            "application": {"name": self.title},
            "index_url": f"{base}/",
        }

    async def handle_websocket(self, request: web.Request) -> web.WebSocketResponse:
        websocket = web.WebSocketResponse(heartbeat=15)
        await websocket.prepare(request)
        held = self.counts.take({"tabs": self.config.max_sessions})
        if held is None:
            await websocket.send_bytes(b"pairchat is full right now; try again in a minute\r\n")
            await websocket.close()
            return websocket
        env = session_env(api=self.config.api, config_dir=self.config.sessions_dir, truecolor=True)
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
            log.info("%s: tab started (pid %s)", request.remote, tab.pid)
            await _pump(websocket, tab)
        except Exception:
            log.exception("%s: the tab failed", request.remote)
        finally:
            await tab.stop()
            self.tabs.discard(tab)
            held.release()
            log.info("%s: tab ended (pid %s)", request.remote, tab.pid)
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


def run_web_door(config: WebDoorConfig) -> None:
    """Serve until SIGTERM/SIGINT (textual-serve's loop), hanging up every tab at the end."""
    WebDoor(config).serve()
