"""The application factory: settings in, a Flask app with blueprints and one error table out.

``create_app(settings)`` builds its services with ``build_services`` (or uses
the ones given, as the tests do), registers the blueprints, the auth hook and
the error handlers of ``backend.http.errors``. Without settings it reads them
from ``PAIRCHAT_*`` (``flask --app backend.server.app run`` works); ``pairchat-server``
reads its flags too and has each granian worker call ``create_app(settings)``.
"""

from __future__ import annotations

import logging
import os

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from backend.core.settings import Settings
from backend.http import (
    accounts,
    auth,
    context,
    conversations,
    door,
    errors,
    events,
    files,
    friends,
    health,
    origin,
    presence,
    rate_headers,
    routing,
    tokens,
)
from backend.http.json_provider import FastJSONProvider
from backend.http.middleware import SecurityHeaders, read_chunked_body
from backend.services.wiring import Services, build_services

log = logging.getLogger("pairchat")


def create_app(settings: Settings | None = None, *, services: Services | None = None) -> Flask:
    if services is None:
        services = build_services(settings or Settings.from_env(os.environ))
    settings = services.settings
    app = Flask(__name__, static_folder=None)
    app.json = FastJSONProvider(app)
    # "/send_message//bob" is no route: merged slashes answered a 308 with an HTML body
    app.url_map.merge_slashes = False
    app.config["MAX_CONTENT_LENGTH"] = settings.max_content_length
    context.install(app, services)
    if settings.open_mode:
        log.warning(
            "OPEN MODE: conversation routes accept unauthenticated requests; "
            "anyone who can reach this server can read and send as anyone"
        )
    blueprints = (
        conversations.bp,
        files.bp,
        accounts.bp,
        friends.bp,
        events.bp,
        presence.bp,
        door.bp,
        tokens.bp,
        health.bp,
    )
    for blueprint in blueprints:
        app.register_blueprint(blueprint)
    app.before_request(read_chunked_body)
    if settings.open_mode:
        app.before_request(origin.guard)
    app.before_request(auth.authenticate)
    if settings.multi_node:
        app.before_request(routing.note_routed_pair)
    errors.register(app)
    rate_headers.register(app)
    # A door's visitor is the client (per-address limits), when the door vouches for it;
    # the door's own address may come from a proxy's X-Forwarded-For (ProxyFix, outside).
    app.wsgi_app = door.DoorClientAddress(  # type: ignore[method-assign]
        app.wsgi_app, services.ssh_identity.secret
    )
    if settings.trusted_proxies:
        # The client's address (rate limits) from X-Forwarded-For, as many hops as proxies.
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=settings.trusted_proxies, x_proto=settings.trusted_proxies
        )
    app.wsgi_app = SecurityHeaders(app.wsgi_app)  # type: ignore[method-assign]
    return app
