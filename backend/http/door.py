"""The SSH door's identity routes and an account's SSH keys (docs/doors.md, "Identity").

``/door/session`` is the door's alone (its secret, no token); ``/door/claim`` and
``/door/link`` are what the TUI's claim screen calls with its one-time ticket (no
token yet: the ticket is the credential); ``/keys…`` are a signed-in account's.

:class:`DoorClientAddress` is where the API learns a door visitor's own address
(docs/doors.md, "Who the visitor is"): a door is a trusted proxy for exactly that.
A request naming its client in ``X-Pairchat-Client`` is believed only with the
door's credential: the door secret itself (``X-Pairchat-Door``, the door's own
calls) or ``X-Pairchat-Client-Proof``, an HMAC of that one address keyed with
the door secret (what a session's TUI gets: it can vouch for its own visitor and
nobody else, and never learns the secret). Anything else is dropped and the
request counts as from its socket's address, as before.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from flask import Blueprint, request
from flask.typing import ResponseReturnValue

from backend.core.ssh_keys import parse_fingerprint, parse_public_key
from backend.http import auth, replies
from backend.http import request_data as data
from backend.http.context import services
from backend.services.accounts import parse_display_name, parse_invite
from backend.services.ssh_identity import parse_code, parse_ticket
from protocol.door_proof import (
    CLIENT_HEADER,
    DOOR_HEADER,
    PROOF_HEADER,
    client_address,
    client_proof,
)

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

bp = Blueprint("door", __name__)

CLIENT = "HTTP_" + CLIENT_HEADER.upper().replace("-", "_")
PROOF = "HTTP_" + PROOF_HEADER.upper().replace("-", "_")
DOOR = "HTTP_" + DOOR_HEADER.upper().replace("-", "_")


def _address(text: str) -> str | None:
    """``text`` as a canonical IP address, or None (a list, a name, anything else)."""
    try:
        return client_address(text)
    except ValueError:
        return None


class DoorClientAddress:
    """WSGI middleware: ``REMOTE_ADDR`` is the door's visitor when the door vouches for it."""

    def __init__(self, app: WSGIApplication, secret: Callable[[], str]) -> None:
        self.app = app
        self._secret_of = secret
        self._secret: str | None = None

    def _door_secret(self) -> str:
        if self._secret is None:  # read once: door.secret is never replaced
            self._secret = self._secret_of()
        return self._secret

    def vouched(self, environ: WSGIEnvironment) -> str | None:
        """The visitor's address if the request names one with the door's credential."""
        named = environ.get(CLIENT)
        if not named:
            return None
        address = _address(named)
        if address is None:
            return None
        secret = self._door_secret().encode("utf-8")
        door = environ.get(DOOR)
        if door and hmac.compare_digest(door.encode("utf-8", "replace"), secret):
            return address
        proof = environ.get(PROOF)
        expected = client_proof(self._door_secret(), address)
        if proof and hmac.compare_digest(proof.encode("utf-8", "replace"), expected.encode()):
            return address
        return None

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if CLIENT in environ or PROOF in environ:
            try:
                address = self.vouched(environ)
            except Exception:  # no readable secret: nobody is vouched for
                address = None
            if address is not None:
                environ["pairchat.door_peer"] = environ.get("REMOTE_ADDR", "")
                environ["REMOTE_ADDR"] = address
            environ.pop(CLIENT, None)
            environ.pop(PROOF, None)
        return self.app(environ, start_response)


@bp.post("/door/session")
@auth.door
def session() -> ResponseReturnValue:
    key = data.parsed("public_key", parse_public_key)
    return replies.door_session(services().ssh_identity.session(key))


@bp.post("/door/claim")
@auth.public
def claim() -> ResponseReturnValue:
    ticket = data.parsed("ticket", parse_ticket)
    user, token = services().ssh_identity.claim(
        ticket,
        data.username("username"),
        data.parsed("display_name", parse_display_name),
        address=request.remote_addr,
        invite=data.parsed("invite", parse_invite),
    )
    return replies.account(user, token), 201


@bp.post("/door/link")
@auth.public
def link() -> ResponseReturnValue:
    ticket = data.parsed("ticket", parse_ticket)
    user, token = services().ssh_identity.link(ticket, data.parsed("code", parse_code))
    return replies.account(user, token)


@bp.post("/keys/link_code")
@auth.user
def link_code() -> ResponseReturnValue:
    code, expires_in = services().ssh_identity.link_code(auth.current_user())
    return replies.link_code(code, expires_in)


@bp.get("/keys")
@auth.user
def keys() -> ResponseReturnValue:
    return replies.keys(services().ssh_identity.keys(auth.current_user()))


@bp.post("/keys/remove")
@auth.user
def remove_key() -> ResponseReturnValue:
    fingerprint = data.parsed("fingerprint", parse_fingerprint)
    services().ssh_identity.remove_key(auth.current_user(), fingerprint)
    return replies.success()
