"""Open mode's guard against browsers: unknown Host names and cross-site requests.

Open mode serves anyone who can reach it, as anyone. On loopback that is the
local user — unless a web page in their browser reaches it for them: by DNS
rebinding (a hostile name that resolves to 127.0.0.1, sent as the ``Host``)
or by a plain cross-site form post. So in open mode a request must name a
loopback host (``localhost``, ``127.0.0.1``, ``[::1]``) or one of
``--allowed-hosts``, and a request a browser marks as coming from another
site (``Origin`` of another host, ``Sec-Fetch-Site: cross-site``) is refused.
With auth on none of this applies: a browser never adds a bearer token by itself.
"""

from __future__ import annotations

import functools
import ipaddress
from urllib.parse import urlsplit

from flask import request

from backend.http.context import services
from backend.http.errors import CrossSite, HostRefused


def _hostname(authority: str) -> str | None:
    try:
        return urlsplit(f"//{authority}").hostname
    except ValueError:
        return None


@functools.lru_cache(maxsize=256)
def _loopback(name: str) -> bool:
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


@functools.lru_cache(maxsize=256)
def _hostname_cached(authority: str) -> str | None:
    return _hostname(authority)


def _allowed(name: str | None) -> bool:
    if not name:
        return False
    if _loopback(name):
        return True
    settings = services().settings
    return name in settings.extra_hosts or name == settings.host.strip("[]").lower()


def guard() -> None:
    """``before_request`` in open mode."""
    if not _allowed(_hostname_cached(request.host)):
        raise HostRefused(
            "this open-mode server answers to localhost only (or the names in --allowed-hosts)"
        )
    origin = request.headers.get("Origin")
    fetch_site = request.headers.get("Sec-Fetch-Site", "").lower()
    if fetch_site == "cross-site" or (
        origin is not None and not _allowed(_hostname_cached(origin.partition("://")[2] or origin))
    ):
        raise CrossSite("open mode refuses requests a browser makes for another site")
