"""Sending: the intents that queue a message, an edit or a delete, and the sender loop.

:class:`Sender` puts each item in the :class:`~tui.core.outbox.Outbox` (on disk
before the intent returns) and drains it in order, each item with its
``client_id`` so a retry after a lost reply stores nothing twice. 429 and 5xx
are retried with backoff; any other refusal keeps the item, marked failed with
the reason (:class:`~tui.core.events.SendRefused`), until it is retried or
discarded. A file is queued the same way (its path, checked when queued and read
when sent: :func:`check_file`); one that cannot be read at sending time is refused
like a message the server refused, with the reason. The outbox file is looked at
every ``OUTBOX_RECHECK`` seconds for items another instance added. A stored
message goes to the friend list and the open chat.
"""

from __future__ import annotations

import asyncio
import contextlib
import mimetypes
import os
from dataclasses import replace
from pathlib import Path

from tui.client.errors import describe
from tui.client.http import ApiError, PairchatClient, ServerUnreachable
from tui.client.models import OCTET_STREAM, Attachment, Message
from tui.core.connection import Connection
from tui.core.events import OutboxChanged, Publisher, SendRefused
from tui.core.friends import Roster
from tui.core.open_chat import OpenChat
from tui.core.outbox import Outbox, OutboxItem
from tui.core.tasks import Tasks

MAX_MESSAGE = 4000
"""The server's limit, in characters (docs/api.md)."""
OUTBOX_RECHECK = 5.0
"""Seconds between looks at the outbox file for items another instance added."""


def check_text(text: str) -> None:
    if not text.strip():
        raise ValueError("a message cannot be empty")
    if len(text) > MAX_MESSAGE:
        raise ValueError(f"a message is at most {MAX_MESSAGE} characters")


def check_file(path: str) -> Path:
    """The file ``path`` names (``~`` expanded, made absolute), if it can be sent;
    ``ValueError`` saying why not (a person reads it)."""
    text = path.strip()
    if not text:
        raise ValueError("type the path of a file")
    found = Path(os.path.expanduser(text)).absolute()
    if not found.exists():
        raise ValueError(f"there is no file at {found}")
    if found.is_dir():
        raise ValueError(f"{found} is a folder; choose a file in it (Tab lists them)")
    if not found.is_file():
        raise ValueError(f"{found} is not a regular file")
    if not os.access(found, os.R_OK):
        raise ValueError(f"{found} cannot be read (permission denied)")
    return found


def _attachment_of(path: str) -> Attachment:
    """What a server that does not say its ``attachment`` stored (the file as it is now)."""
    try:
        size = Path(path).stat().st_size
    except OSError:
        size = 0
    return Attachment(Path(path).name, size, mimetypes.guess_type(path)[0] or OCTET_STREAM)


class Sender:
    def __init__(
        self,
        client: PairchatClient,
        me: str,
        outbox: Outbox,
        events: Publisher,
        connection: Connection,
        tasks: Tasks,
        roster: Roster,
        opened: OpenChat,
    ) -> None:
        self.client = client
        self.me = me
        self.outbox = outbox
        self.events = events
        self.connection = connection
        self.tasks = tasks
        self.roster = roster
        self.opened = opened
        self._wakeup = asyncio.Event()

    # -- intents ---------------------------------------------------------------------------
    def send(self, peer: str, text: str, reply_to: int | None = None) -> OutboxItem:
        """Queue ``text`` for ``peer``: on disk before this returns, sent in order;
        :class:`~tui.core.outbox.OutboxFull` (nothing queued) past the outbox's bounds."""
        check_text(text)
        return self._queue(self.outbox.add(peer, text, reply_to=reply_to))

    def send_file(
        self, peer: str, path: str, caption: str = "", reply_to: int | None = None
    ) -> OutboxItem:
        """Queue the file at ``path`` for ``peer`` (``caption``: its text), like a message:
        ``ValueError`` if it cannot be sent (:func:`check_file`), else on disk before
        this returns and sent in order, with its ``client_id``."""
        found = check_file(path)
        if caption:
            check_text(caption)
        item = self.outbox.add(peer, caption, kind="file", reply_to=reply_to, path=str(found))
        return self._queue(item)

    def edit(self, peer: str, message_id: int, text: str) -> OutboxItem:
        """Queue an edit of my message ``message_id`` (kept and retried like a send)."""
        check_text(text)
        return self._queue(self.outbox.add(peer, text, kind="edit", target=message_id))

    def delete(self, peer: str, message_id: int) -> OutboxItem:
        return self._queue(self.outbox.add(peer, "", kind="delete", target=message_id))

    def _queue(self, item: OutboxItem) -> OutboxItem:
        self.roster.sent_to(item.to)
        self.events.publish(OutboxChanged(frozenset({item.to})))
        self._wakeup.set()
        return item

    def retry(self, client_id: str) -> None:
        item = self.outbox.get(client_id)
        if item is not None:
            self.outbox.retry(client_id)
            self.events.publish(OutboxChanged(frozenset({item.to})))
            self._wakeup.set()

    def discard(self, client_id: str) -> OutboxItem | None:
        item = self.outbox.remove(client_id)
        if item is not None:
            self.events.publish(OutboxChanged(frozenset({item.to})))
        return item

    # -- the sender loop -----------------------------------------------------------------
    async def loop(self) -> None:
        while True:
            if self.outbox.reload_if_changed():
                self.events.publish(OutboxChanged(frozenset(i.to for i in self.outbox.items)))
            item = self.outbox.next_to_send()
            if item is None:
                self._wakeup.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), OUTBOX_RECHECK)
                continue
            try:
                stored = await self._deliver(item)
            except ApiError as exc:
                if exc.status == 401 or exc.transient:
                    await self.tasks.retry_after(exc)
                    continue
                reason = describe(exc)
                self.outbox.fail(item.client_id, reason)
                self.events.publish(OutboxChanged(frozenset({item.to})))
                self.events.publish(SendRefused(replace(item, error=reason)))
                continue
            except ServerUnreachable as exc:
                await self.tasks.retry_after(exc)
                continue
            except OSError as exc:  # a file that went away or cannot be read any more
                reason = f"cannot read {item.path}: {exc.strerror or exc}"
                self.outbox.fail(item.client_id, reason)
                self.events.publish(OutboxChanged(frozenset({item.to})))
                self.events.publish(SendRefused(replace(item, error=reason)))
                continue
            self.connection.ok()
            self.outbox.remove(item.client_id)
            self._delivered(item, stored)

    async def _deliver(self, item: OutboxItem) -> Message:
        """Send one item; the message as the server stored it."""
        if item.kind == "send" or (item.kind == "file" and item.path):
            attachment = None
            if item.kind == "file" and item.path:
                sent = await self.client.send_file(
                    item.to, item.path, item.text, item.client_id, reply_to=item.reply_to
                )
                attachment = sent.attachment or _attachment_of(item.path)
            else:
                sent = await self.client.send(
                    item.to, item.text, item.client_id, reply_to=item.reply_to
                )
            return Message(
                sent.id,
                self.me,
                item.text,
                sent.date_sent,
                item.client_id,
                rev=sent.rev,
                reply_to=item.reply_to,
                attachment=attachment,
            )
        if item.kind == "edit" and item.target is not None:
            return await self.client.edit_message(item.to, item.target, item.text)
        if item.target is not None:
            return await self.client.delete_message(item.to, item.target)
        # an item this version cannot read: keep it, refuse it visibly
        raise ApiError(400, "unknown_item", f"cannot send a '{item.kind}' item")

    def _delivered(self, item: OutboxItem, message: Message) -> None:
        if item.is_send:
            self.roster.delivered(item.to, message, item.created)
        self.opened.delivered(item.to, message)
        self.events.publish(OutboxChanged(frozenset({item.to})))
