"""The SSH door's identity routes and an account's SSH keys (docs/doors.md, "Identity").

``/door/session`` is the door's alone (its secret, no token); ``/door/claim`` and
``/door/link`` are what the TUI's claim screen calls with its one-time ticket (no
token yet: the ticket is the credential); ``/keys…`` are a signed-in account's.
"""

from __future__ import annotations

from flask import Blueprint, request
from flask.typing import ResponseReturnValue

from backend.core.ssh_keys import parse_fingerprint, parse_public_key
from backend.http import auth, replies
from backend.http import request_data as data
from backend.http.context import services
from backend.services.accounts import parse_display_name, parse_invite
from backend.services.ssh_identity import parse_code, parse_ticket

bp = Blueprint("door", __name__)


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
