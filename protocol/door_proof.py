"""How a door vouches for its visitor's address to the API: one definition for both.

A door (SSH or web) knows who its visitor is; the API, which sees every door session
come from the door's own address, believes ``X-Pairchat-Client`` only with the door
secret (``X-Pairchat-Door``) or with ``X-Pairchat-Client-Proof``: an HMAC of that one
address keyed with the door secret. A session's TUI gets the proof, never the secret
(with the secret it could ask ``/door/session`` for any key's token). Both sides make
and check the proof over the address in one canonical form (:func:`client_address`).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress

DOOR_HEADER = "X-Pairchat-Door"
CLIENT_HEADER = "X-Pairchat-Client"
PROOF_HEADER = "X-Pairchat-Client-Proof"
PROOF_CONTEXT = b"pairchat client address\n"
"""What the proof is an HMAC of, before the address."""


def client_address(text: str) -> str:
    """``text`` (a peer address) in canonical form: no IPv6 zone, an IPv4-mapped IPv6
    address as IPv4. ``ValueError`` if it is not an IP address."""
    address = ipaddress.ip_address(text.strip().split("%", 1)[0])
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return str(address)


def client_proof(secret: str, address: str) -> str:
    """The HMAC that lets a session vouch for its visitor's ``address`` and no other."""
    message = PROOF_CONTEXT + address.encode("ascii")
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()
