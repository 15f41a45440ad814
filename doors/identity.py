"""Who an SSH key is, asked of the API (the door's only routes; docs/doors.md).

``POST /door/session`` with the door's secret (``X-Pairchat-Door``) and the key
in its OpenSSH one-line form answers either a known account (username and a
fresh token for this session) or a one-time ticket (10 minutes, bound to that
key) with which the TUI's claim screen creates an account or links the key to
one (``/door/claim``, ``/door/link``: the TUI calls those itself).

An API without the door routes (404) is not an error: the session starts on the
TUI's own sign-in screen (:data:`SIGN_IN`). A known key's token lives as long
as its session: the door revokes it (``POST /logout``) when the session ends.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from typing import Any

import httpx

from doors.secret import CLIENT_HEADER, HEADER
from doors.session_env import Identity

SIGN_IN = Identity()
"""No identity from the door: the TUI asks for username and password."""
TIMEOUT = httpx.Timeout(10.0, connect=5.0)
_USERNAME = re.compile(r"^[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){0,38}$")
_TOKENISH = re.compile(r"^[A-Za-z0-9._~+/=-]{8,512}$")


class IdentityUnavailable(RuntimeError):
    """The API did not answer, or answered something the door cannot use."""


class KeyRefused(RuntimeError):
    """The API will not take this key, or this client, now: the sentence says why."""


@dataclass(frozen=True)
class DoorApi:
    """The API's door routes, for one door (its base URL and secret)."""

    url: str
    secret: str

    async def who_is(
        self,
        public_key: str,
        client: httpx.AsyncClient | None = None,
        *,
        visitor: str | None = None,
    ) -> Identity:
        """The account of ``public_key`` (OpenSSH one-line form), a ticket, or SIGN_IN;
        ``visitor`` is the SSH client's address (the API's limits and logs count it)."""
        own = client is None
        client = client or httpx.AsyncClient(timeout=TIMEOUT)
        headers = {HEADER: self.secret}
        if visitor:
            headers[CLIENT_HEADER] = visitor
        try:
            reply = await client.post(
                f"{self.url.rstrip('/')}/door/session",
                data={"public_key": public_key},
                headers=headers,
            )
        except httpx.HTTPError as exc:
            raise IdentityUnavailable(f"the API at {self.url} did not answer ({exc})") from None
        finally:
            if own:
                await client.aclose()
        if reply.status_code == 404:
            return SIGN_IN
        if reply.status_code == 400:
            raise KeyRefused(f"pairchat does not take this SSH key: {_message(reply)}")
        if reply.status_code == 429:
            raise KeyRefused(f"pairchat is refusing sign-ins from your address: {_message(reply)}")
        if reply.status_code == 403:
            raise IdentityUnavailable("the API refused the door's secret (door.secret differs?)")
        if reply.status_code != 200:
            raise IdentityUnavailable(f"the API answered {reply.status_code} to /door/session")
        try:
            return parse_session(reply.json())
        except ValueError as exc:
            raise IdentityUnavailable(f"the API's /door/session reply: {exc}") from None

    async def revoke(self, token: str, client: httpx.AsyncClient) -> None:
        """End a session's token when the session ends (best effort: it may be gone)."""
        with contextlib.suppress(httpx.HTTPError):
            await client.post(
                f"{self.url.rstrip('/')}/logout", headers={"Authorization": f"Bearer {token}"}
            )


def _message(reply: httpx.Response) -> str:
    """The API's sentence for an error, on one line (or the status)."""
    try:
        text = reply.json().get("message")
    except (ValueError, AttributeError):
        text = None
    if not isinstance(text, str) or not text.strip():
        return f"the API answered {reply.status_code}"
    return " ".join(text.split())[:200]


def parse_session(body: Any) -> Identity:
    """The reply of ``/door/session``, checked: nothing unchecked reaches a path or env."""
    if not isinstance(body, dict):
        raise ValueError("not a JSON object")
    if body.get("known") is True:
        username, token = body.get("username"), body.get("token")
        if not isinstance(username, str) or not _USERNAME.match(username.lower()):
            raise ValueError("no valid username")
        if not isinstance(token, str) or not _TOKENISH.match(token):
            raise ValueError("no valid token")
        return Identity(username=username.lower(), token=token)
    if body.get("known") is False:
        ticket = body.get("ticket")
        if not isinstance(ticket, str) or not _TOKENISH.match(ticket):
            raise ValueError("no valid ticket")
        return Identity(ticket=ticket)
    raise ValueError("no 'known' field")
