"""Liveness check for load balancers and the demo launcher."""

from __future__ import annotations

from flask import Blueprint
from flask.typing import ResponseReturnValue

from backend.http import auth, replies

bp = Blueprint("health", __name__)


@bp.get("/healthz")
@auth.public
def healthz() -> ResponseReturnValue:
    return replies.health()
