"""Blocking calls for scripts and tests: the async client run on a private event loop.

``BlockingClient(url, token=…, username=…)`` offers every method of
:class:`tui.client.http.PairchatClient` as a plain call (``client.history("bob")``),
so there is one implementation of each route. The loop lives in a daemon thread
owned by an anyio blocking portal (anyio ships with httpx); ``close()`` or the
``with`` block ends it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from anyio.from_thread import BlockingPortal, start_blocking_portal

from tui.client.http import PairchatClient


class BlockingClient:
    """A :class:`PairchatClient` whose coroutine methods block until they return."""

    def __init__(self, base_url: str, token: str | None = None, **options: Any) -> None:
        self._portal_cm: AbstractContextManager[BlockingPortal] = start_blocking_portal()
        self._portal = self._portal_cm.__enter__()
        self.client = PairchatClient(base_url, token, **options)

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.client, name)
        if not callable(attribute) or name.startswith("_"):
            return attribute

        @functools.wraps(attribute)
        def call(*args: Any, **kwargs: Any) -> Any:
            bound: Callable[..., Any] = functools.partial(attribute, *args, **kwargs)
            return self._portal.call(bound)

        return call

    @property
    def token(self) -> str | None:
        return self.client.token

    @property
    def username(self) -> str | None:
        return self.client.username

    def close(self) -> None:
        if self._portal_cm is not None:
            self._portal.call(self.client.aclose)
            self._portal_cm.__exit__(None, None, None)

    def __enter__(self) -> BlockingClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
