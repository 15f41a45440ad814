"""The secret a door shows the API (``X-Pairchat-Door``) to ask who an SSH key is, and
with which it vouches for a visitor's address (:func:`client_proof`).

``PAIRCHAT_DOOR_SECRET`` if set (a door on another machine than the API), else
``door.secret`` (0600) in the data folder, created by whoever starts first (the
API server or a door), 32 random bytes as URL-safe text.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import secrets
from collections.abc import Mapping
from pathlib import Path

from doors.files import create_once, read_private

SECRET_FILE = "door.secret"
HEADER = "X-Pairchat-Door"
CLIENT_HEADER = "X-Pairchat-Client"
"""The visitor's address, believed by the API only with the secret or a proof for it."""
PROOF_CONTEXT = b"pairchat client address\n"
"""What the proof is an HMAC of, before the address (backend/http/door.py checks the same)."""


def client_address(text: str) -> str:
    """``text`` (a peer address) in the canonical form the proof is made over."""
    address = ipaddress.ip_address(text.split("%", 1)[0])
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return str(address)


def client_proof(secret: str, address: str) -> str:
    """The HMAC that lets a session vouch for its visitor's ``address`` and no other."""
    message = PROOF_CONTEXT + address.encode("ascii")
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def door_secret(folder: Path, env: Mapping[str, str] | None = None) -> str:
    env = os.environ if env is None else env
    given = env.get("PAIRCHAT_DOOR_SECRET", "").strip()
    if given:
        return given
    path = folder / SECRET_FILE
    create_once(path, lambda: secrets.token_urlsafe(32).encode("ascii") + b"\n")
    return read_private(path).decode("ascii").strip()
