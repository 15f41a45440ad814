"""The application factory: config, services, blueprints, one JSON error handler.

Config comes from defaults, then ``PAIRCHAT_*`` environment variables
(``app.config.from_prefixed_env``), then the dict a caller (CLI, tests) passes.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from argon2 import PasswordHasher
from flask import Flask, current_app, request
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from backend.accounts import Accounts
from backend.chat import Chat
from backend.errors import ApiError
from backend.http import accounts, auth, conversations, friends, health
from backend.http.login_throttle import LoginThrottle
from backend.http.services import Services
from backend.notify import FeedWatcher, Notifier
from backend.storage.accounts import AccountStore
from backend.storage.conversations import ConversationStore

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

log = logging.getLogger("pairchat")
REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA_DIR = REPO_ROOT / "conversations"

DEFAULTS: dict[str, Any] = {
    "DATA_DIR": str(DEFAULT_DATA_DIR),
    "OPEN_MODE": False,
    "MAX_CONTENT_LENGTH": 64 * 1024,
    "MAX_WAIT": 60.0,
    "MAX_WAITERS": 1000,
    "MAX_OPEN_CONVERSATIONS": 512,
    "SQLITE_SYNCHRONOUS": "NORMAL",
    "LOGIN_RATE_LIMIT": "10 per minute",
    "WATCH_INTERVAL": 0.025,
    # argon2id cost; tests may lower it (the hash stays argon2id, just cheaper).
    "ARGON2_TIME_COST": 3,
    "ARGON2_MEMORY_COST": 65536,
    "JSON_SORT_KEYS": False,
}

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


def create_app(config: dict[str, Any] | None = None) -> Flask:
    app = Flask(__name__, static_folder=None)
    app.config.update(DEFAULTS)
    app.config.from_prefixed_env("PAIRCHAT")
    if config:
        app.config.update(config)
    app.json.sort_keys = False  # type: ignore[attr-defined]

    data_dir = Path(app.config["DATA_DIR"]).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    synchronous = str(app.config["SQLITE_SYNCHRONOUS"]).upper()
    if synchronous not in ("NORMAL", "FULL", "EXTRA"):
        raise ValueError("SQLITE_SYNCHRONOUS must be NORMAL, FULL or EXTRA")
    store = AccountStore(data_dir, synchronous=synchronous)
    hasher = PasswordHasher(
        time_cost=int(app.config["ARGON2_TIME_COST"]),
        memory_cost=int(app.config["ARGON2_MEMORY_COST"]),
    )
    account_service = Accounts(store, hasher)
    notifier = Notifier(max_waiters=int(app.config["MAX_WAITERS"]))
    conversation_store = ConversationStore(
        data_dir, max_open=int(app.config["MAX_OPEN_CONVERSATIONS"]), synchronous=synchronous
    )
    chat = Chat(
        conversation_store,
        account_service,
        notifier,
        open_mode=bool(app.config["OPEN_MODE"]),
        max_wait=float(app.config["MAX_WAIT"]),
    )
    throttle = LoginThrottle(str(app.config["LOGIN_RATE_LIMIT"]))
    bundle = Services(conversation_store, store, account_service, notifier, chat, throttle)
    if float(app.config["WATCH_INTERVAL"]) > 0:
        bundle.watcher = FeedWatcher(store, notifier, float(app.config["WATCH_INTERVAL"])).start()
    app.extensions["pairchat"] = bundle
    if app.config["OPEN_MODE"]:
        log.warning(
            "OPEN MODE: conversation routes accept unauthenticated requests; "
            "anyone who can reach this server can read and send as anyone"
        )

    for blueprint in (conversations.bp, accounts.bp, friends.bp, health.bp):
        app.register_blueprint(blueprint)
    app.before_request(_read_chunked_body)
    app.before_request(auth.authenticate)
    _register_errors(app)
    app.wsgi_app = SecurityHeaders(app.wsgi_app)  # type: ignore[method-assign]
    return app


def _read_chunked_body() -> None:
    """Refuse a chunked body over the limit with 413 (Werkzeug would cut it short).

    A chunked request has no Content-Length for ``MAX_CONTENT_LENGTH`` to check,
    and the limited stream silently stops at the limit: a long message would be
    stored truncated. Read up to one byte past the limit and decide.
    """
    if "chunked" not in request.environ.get("HTTP_TRANSFER_ENCODING", "").lower():
        return
    if request.content_length is not None:
        return
    limit = int(current_app.config["MAX_CONTENT_LENGTH"])
    raw = request.environ["wsgi.input"].read(limit + 1)
    if len(raw) > limit:
        raise RequestEntityTooLarge()
    request.environ["wsgi.input"] = io.BytesIO(raw)
    request.environ["CONTENT_LENGTH"] = str(len(raw))
    request.environ.pop("HTTP_TRANSFER_ENCODING", None)
    request.environ["wsgi.input_terminated"] = False


def _error(exc: ApiError) -> tuple[dict[str, object], int]:
    return exc.to_json(), exc.status


_HTTP_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
}


def _register_errors(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def api_error(exc: ApiError) -> ResponseReturnValue:
        return _error(exc)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> ResponseReturnValue:
        status = exc.code or 500
        code = _HTTP_CODES.get(status, "http_error")
        if status == 413:
            limit = app.config["MAX_CONTENT_LENGTH"]
            message = f"the request body is larger than {limit} bytes"
        else:
            message = exc.description or exc.name
        return _error(ApiError(code, message, status))

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> ResponseReturnValue:
        log.exception("unexpected error on %s %s", request.method, request.path)
        return _error(ApiError("internal_error", "the server failed; nothing was changed", 500))


class SecurityHeaders:
    """WSGI middleware adding ``SECURITY_HEADERS`` to every reply, errors included.

    At the WSGI level it is a list extend per reply; Werkzeug's ``Headers``
    update in an ``after_request`` hook validated each header every time and
    cost ~10% of a long-poll.
    """

    def __init__(self, app: WSGIApplication) -> None:
        self.app = app
        self.headers = list(SECURITY_HEADERS.items())

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            headers.extend(self.headers)
            return start_response(status, headers, exc_info)

        return self.app(environ, start)
