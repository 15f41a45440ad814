"""The task group the core's loops run in, and how a loop waits after a failed request.

:meth:`~tui.core.sync.SyncCore.run` opens the group; the stores spawn one-off tasks
into it (a chat's newest page, a typing signal), which are dropped when nothing
runs. Every loop waits after a failure through :meth:`Tasks.retry_after`: a 401
ends the session (:class:`SessionOver`, which ends ``run``); anything else waits as
the :class:`~tui.core.connection.Connection` says.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from tui.client.http import ApiError
from tui.core.connection import Connection


class SessionOver(Exception):
    """Raised inside the loops when the server refuses our token: ends ``SyncCore.run``."""


class Tasks:
    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.group: asyncio.TaskGroup | None = None
        """The running task group (set by ``SyncCore.run``), or None."""

    def spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None] | None:
        """Run ``coro`` beside the loops; None (and ``coro`` closed) when they do not run."""
        if self.group is None:
            coro.close()
            return None
        return self.group.create_task(coro)

    async def retry_after(self, exc: Exception) -> None:
        """Wait before retrying after ``exc``; a 401 ends the session instead."""
        if isinstance(exc, ApiError) and exc.status == 401:
            raise SessionOver from exc
        await self.connection.recover(exc)
