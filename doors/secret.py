"""The secret a door shows the API (``X-Pairchat-Door``) to ask who an SSH key is, and
with which it vouches for a visitor's address (:func:`client_proof`).

``PAIRCHAT_DOOR_SECRET`` if set (a door on another machine than the API), else
``door.secret`` (0600) in the data folder, created by whoever starts first (the
API server or a door), 32 random bytes as URL-safe text.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from pathlib import Path

from doors.files import create_once, read_private
from protocol.door_proof import CLIENT_HEADER, DOOR_HEADER, client_address, client_proof

SECRET_FILE = "door.secret"
HEADER = DOOR_HEADER
__all__ = [
    "CLIENT_HEADER",
    "HEADER",
    "SECRET_FILE",
    "client_address",
    "client_proof",
    "door_secret",
]


def door_secret(folder: Path, env: Mapping[str, str] | None = None) -> str:
    env = os.environ if env is None else env
    given = env.get("PAIRCHAT_DOOR_SECRET", "").strip()
    if given:
        return given
    path = folder / SECRET_FILE
    create_once(path, lambda: secrets.token_urlsafe(32).encode("ascii") + b"\n")
    return read_private(path).decode("ascii").strip()
