"""Where a request finds the app's ``Services``: one per ``create_app``, no globals."""

from __future__ import annotations

from flask import Flask, current_app

from backend.services.wiring import Services

_KEY = "pairchat"


def install(app: Flask, services: Services) -> None:
    app.extensions[_KEY] = services


def services() -> Services:
    """The services of the app serving this request."""
    found: Services = current_app.extensions[_KEY]
    return found
