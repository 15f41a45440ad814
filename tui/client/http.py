"""The pairchat HTTP client: every route of docs/api.md, once, over httpx, no Textual.

This is the one place that knows URLs, field names and error shapes. It is
asyncio-native (cancelling the task that awaits a request aborts it at once, so
switching chats or quitting never waits on a long-poll); scripts and tests that
want plain blocking calls wrap it in :class:`tui.client.blocking.BlockingClient`,
which runs these same methods on a private event loop.

Errors: a JSON error reply raises :class:`ApiError` (``status``, ``code``,
``message``); a connection failure or timeout raises :class:`ServerUnreachable`
(with the URL that was tried); a reply that cannot be read raises
:class:`~tui.client.models.BadReply` inside an :class:`ApiError` (``bad_reply``).
Replies are decoded with the wire schema (``protocol.models``) into the typed
models of :mod:`tui.client.models` here and nowhere else. A ``Retry-After`` header
(whole seconds or an HTTP date) is read into ``ApiError.retry_after``, and into
``Feed.retry_after`` on a ``/updates`` reply.

:meth:`PairchatClient.events` holds ``GET /events`` open and yields what the
stream says (:mod:`tui.client.events` reads the framing). A stream that stays
silent for ``STREAM_READ_TIMEOUT`` (two of the server's 25-s keep-alives and a
margin) is taken for dead: :class:`ServerUnreachable`.
"""

from __future__ import annotations

import contextlib
import email.utils
import mimetypes
import os
import tempfile
import time
from collections.abc import AsyncGenerator, Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import IO, Any, TypeVar

import httpx

from protocol import DecodeError, decode
from protocol.models import Error
from tui.client.downloads import filename_of, place, safe_file_name
from tui.client.events import EventParser, Retry, StreamItem, read_item
from tui.client.models import (
    OCTET_STREAM,
    BadReply,
    Feed,
    FriendList,
    LinkCode,
    Message,
    Page,
    ScriptToken,
    SearchResults,
    Sent,
    Session,
    SharedFile,
    SshKey,
    changed_message,
    raw,
    revoked_count,
    settings_of,
    success,
    unread_count,
)

T = TypeVar("T")

DEFAULT_TIMEOUT = 10.0
"""Seconds for connect and read on ordinary requests."""
LONG_POLL_MARGIN = 10.0
"""Extra read time allowed on top of a ``wait`` the server may hold a request for."""
STREAM_READ_TIMEOUT = 2 * 25.0 + 10.0
"""Seconds an event stream may stay silent before it is taken for dead: two of the
server's keep-alive comments (every 25 s) and a margin."""
MAX_RETRY_AFTER = 600.0
"""The longest ``Retry-After`` obeyed, in seconds (a wrong header cannot stop a client for days)."""
EVENT_STREAM = "text/event-stream"
NOT_EVENT_STREAM = "not_event_stream"
"""``ApiError.code`` when ``/events`` answered 200 with something other than an event stream."""


UPLOAD_CUT = "upload_cut"
"""``ApiError.code`` (status 0, from the client) when the server, still up, cut an upload
off twice: what a server does to a body over its limit when its 413 is lost."""
UPLOAD_CUT_TRIES = 2
CUT_ERRORS = frozenset({"ReadError", "WriteError", "RemoteProtocolError"})
"""httpx's errors for a connection reset or closed under a request (not a refusal to
connect, not a timeout)."""


class ServerUnreachable(Exception):
    """The server could not be reached (refused, reset, timed out, DNS)."""

    def __init__(self, url: str, reason: str = "") -> None:
        super().__init__(f"cannot reach the server at {url}" + (f" ({reason})" if reason else ""))
        self.url = url
        self.reason = reason


class ApiError(Exception):
    """The server answered with an error: ``status`` plus the JSON ``error`` code."""

    def __init__(
        self, status: int, code: str, message: str, *, retry_after: float | None = None
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after
        """Seconds the server asked for before a next try (``Retry-After``), if it did."""

    @property
    def transient(self) -> bool:
        """Worth retrying later as is (server trouble or rate limit, not bad input)."""
        return self.status >= 500 or self.status == 429


def retry_after(response: httpx.Response, now: float | None = None) -> float | None:
    """The reply's ``Retry-After`` in seconds (0 to ``MAX_RETRY_AFTER``); None without one.

    RFC 9110 10.2.3: whole seconds, or an HTTP date (``now`` is ``time.time()``)."""
    value = response.headers.get("retry-after", "").strip()
    if not value:
        return None
    if value.isascii() and value.isdigit():
        seconds = float(value)
    else:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    return min(MAX_RETRY_AFTER, max(0.0, seconds))


def _fields(**values: Any) -> dict[str, str]:
    """Form fields, leaving out the optional ones not given."""
    return {k: str(v) for k, v in values.items() if v is not None}


class PairchatClient:
    """The asyncio client: one method per route, typed replies."""

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        username: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        transport: httpx.AsyncBaseTransport | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.headers = dict(headers or {})
        """Sent with every request: a door's word for who its visitor is (tui/door.py)."""
        self.token = token
        self.username = username
        self.timeout = timeout
        self._transport = transport
        self._http: httpx.AsyncClient | None = None

    def _client(self) -> httpx.AsyncClient:
        # Created lazily, inside the running event loop that will use it.
        if self._http is None:
            limits = httpx.Limits(max_connections=8, max_keepalive_connections=4)
            self._http = httpx.AsyncClient(
                timeout=self.timeout, transport=self._transport, limits=limits
            )
        return self._http

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    async def __aenter__(self) -> PairchatClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- the one request path ------------------------------------------------------
    def _headers(self, auth: bool = True) -> dict[str, str]:
        headers = dict(self.headers)
        if auth and self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return headers

    async def _send(
        self,
        method: str,
        path: str,
        *,
        data: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        wait: float | None = None,
        auth: bool = True,
        files: Mapping[str, tuple[str, IO[bytes], str]] | None = None,
    ) -> httpx.Response:
        timeout = max(self.timeout, wait + LONG_POLL_MARGIN) if wait else self.timeout
        try:
            return await self._client().request(
                method,
                self.base_url + path,
                data=data,
                files=files,
                params=params,
                headers=self._headers(auth),
                timeout=timeout,
            )
        except httpx.TransportError as exc:
            raise ServerUnreachable(self.base_url, type(exc).__name__) from exc

    async def _call(
        self,
        method: str,
        path: str,
        parse: Callable[[bytes], T],
        *,
        data: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        wait: float | None = None,
        auth: bool = True,
    ) -> T:
        response = await self._send(method, path, data=data, params=params, wait=wait, auth=auth)
        return self._read(response, parse)

    @staticmethod
    def _read(response: httpx.Response, parse: Callable[[bytes], T]) -> T:
        if response.status_code >= 400:
            after = retry_after(response)
            try:
                error = decode(response.content, Error)
            except DecodeError:
                raise ApiError(
                    response.status_code, "http_error", response.reason_phrase, retry_after=after
                ) from None
            raise ApiError(response.status_code, error.error, error.message, retry_after=after)
        try:
            return parse(response.content)
        except BadReply as exc:
            raise ApiError(response.status_code, "bad_reply", str(exc)) from exc

    def _me(self) -> str:
        if not self.username:
            raise ValueError("sign in first: the client does not know its username")
        return self.username

    def _remember(self, session: Session) -> Session:
        self.token = session.token or self.token
        self.username = session.username
        return session

    # -- accounts ------------------------------------------------------------------
    async def register(
        self, username: str, password: str, display_name: str | None = None
    ) -> Session:
        data = _fields(username=username, password=password, display_name=display_name or None)
        return self._remember(
            await self._call("POST", "/register", Session.parse, data=data, auth=False)
        )

    async def login(self, username: str, password: str) -> Session:
        data = _fields(username=username, password=password)
        return self._remember(
            await self._call("POST", "/login", Session.parse, data=data, auth=False)
        )

    async def logout(self) -> bool:
        return await self._call("POST", "/logout", success)

    async def change_password(self, current: str, new: str) -> int:
        """Change the password (revokes every other token); how many were revoked."""
        data = _fields(password=current, new_password=new)
        return await self._call("POST", "/change_password", revoked_count, data=data)

    async def logout_all(self) -> int:
        """Revoke every token of this account, this one included."""
        return await self._call("POST", "/logout_all", revoked_count)

    async def me(self) -> Session:
        session = await self._call("GET", "/me", Session.parse)
        self.username = session.username
        return session

    # -- the SSH door's identity (docs/doors.md) --------------------------------------
    async def door_claim(self, ticket: str, username: str, display_name: str = "") -> Session:
        """Claim ``username`` for the SSH key behind a door's one-time ``ticket``."""
        data = _fields(ticket=ticket, username=username, display_name=display_name or None)
        return self._remember(
            await self._call("POST", "/door/claim", Session.parse, data=data, auth=False)
        )

    async def door_link(self, ticket: str, code: str) -> Session:
        """Add the ticket's SSH key to the account that made the one-time ``code``."""
        data = _fields(ticket=ticket, code=code)
        return self._remember(
            await self._call("POST", "/door/link", Session.parse, data=data, auth=False)
        )

    async def link_code(self) -> LinkCode:
        return await self._call("POST", "/keys/link_code", LinkCode.parse)

    async def keys(self) -> tuple[SshKey, ...]:
        return await self._call("GET", "/keys", SshKey.parse_list)

    async def remove_key(self, fingerprint: str) -> bool:
        data = _fields(fingerprint=fingerprint)
        return await self._call("POST", "/keys/remove", success, data=data)

    async def script_tokens(self) -> tuple[ScriptToken, ...]:
        """My script tokens (``POST /tokens`` makes them): never their secrets."""
        return await self._call("GET", "/tokens", ScriptToken.parse_list)

    async def revoke_token(self, token_id: str) -> bool:
        data = _fields(id=token_id)
        return await self._call("POST", "/tokens/revoke", success, data=data)

    async def healthz(self) -> dict[str, Any]:
        return await self._call("GET", "/healthz", raw, auth=False)

    # -- conversations ---------------------------------------------------------------
    async def create_conversation(self, other: str) -> bool:
        data = _fields(user_one=self._me(), user_two=other)
        return await self._call("POST", "/create_conversation_db", success, data=data)

    async def history(
        self,
        other: str,
        *,
        after_id: int | None = None,
        before_id: int | None = None,
        after_rev: int | None = None,
        around_id: int | None = None,
        limit: int | None = None,
        wait: float | None = None,
    ) -> Page:
        data = _fields(
            user_one=self._me(),
            user_two=other,
            after_id=after_id,
            before_id=before_id,
            after_rev=after_rev,
            around_id=around_id,
            limit=limit,
            wait=wait or None,
        )
        return await self._call("POST", "/get_message_history", Page.parse, data=data, wait=wait)

    async def send(
        self, to: str, text: str, client_id: str | None = None, reply_to: int | None = None
    ) -> Sent:
        data = _fields(author=self._me(), message=text, client_id=client_id, reply_to=reply_to)
        return await self._call("POST", f"/send_message/{to}", Sent.parse, data=data)

    # -- files ---------------------------------------------------------------------------
    async def send_file(
        self,
        to: str,
        path: str | os.PathLike[str],
        caption: str = "",
        client_id: str | None = None,
        reply_to: int | None = None,
    ) -> Sent:
        """Send the file at ``path`` to ``to`` (``caption``: the message's text).

        The upload streams from disk in chunks (multipart/form-data with the open
        file): a large file is never held in memory. ``client_id`` makes a retry
        after a lost reply store nothing twice, as on :meth:`send`. Raises
        ``OSError`` when the file cannot be opened, :class:`ApiError` when the server
        refuses it (413 ``file_too_large``, a quota).

        A server that refuses a body it will not read (over its size limit) answers 413
        at once and closes; the part of the file still on its way then resets the
        connection, which often loses the answer (httpx sends no ``Expect:
        100-continue``). So a connection cut during the upload while the server still
        answers is tried once more (the 413 may get through), and then is
        :data:`UPLOAD_CUT`, a refusal: not retried for ever as an outage, which would
        hold up the outbox behind it."""
        source = Path(path)
        kind = mimetypes.guess_type(source.name)[0] or OCTET_STREAM
        data = _fields(
            author=self._me(), message=caption or None, client_id=client_id, reply_to=reply_to
        )
        where = {"author": self._me()}  # a cluster's router places the pair by the query
        for attempt in range(UPLOAD_CUT_TRIES):
            try:
                with source.open("rb") as handle:
                    files = {"file": (source.name, handle, kind)}
                    response = await self._send(
                        "POST", f"/send_file/{to}", data=data, files=files, params=where
                    )
                return self._read(response, Sent.parse)
            except ServerUnreachable as exc:
                if exc.reason not in CUT_ERRORS or not await self._answers():
                    raise
                if attempt == UPLOAD_CUT_TRIES - 1:
                    raise ApiError(
                        0,
                        UPLOAD_CUT,
                        "the server closed the connection during the upload "
                        "(the file may be over its size limit)",
                    ) from exc
        raise AssertionError("unreachable")

    async def _answers(self) -> bool:
        """The server answers at all (``GET /healthz``, any status)."""
        try:
            await self._send("GET", "/healthz", auth=False)
        except ServerUnreachable:
            return False
        return True

    async def download_file(
        self, other: str, message_id: int, folder: str | os.PathLike[str]
    ) -> Path:
        """Save the file of message ``message_id`` into ``folder`` (made if missing); where.

        The bytes stream into a temporary file in ``folder``, which takes the sender's
        file name (made safe) only once complete, as ``name (1)`` … when ``name``
        exists: nothing there is overwritten, and a failed download leaves nothing."""
        params = _fields(user_one=self._me(), user_two=other)
        target = Path(folder).expanduser()
        target.mkdir(parents=True, exist_ok=True)
        try:
            async with self._client().stream(
                "GET",
                f"{self.base_url}/file/{message_id}",
                params=params,
                headers=self._headers(),
            ) as response:
                if response.status_code >= 400:
                    await response.aread()
                    self._read(response, bytes)  # raises its ApiError
                name = filename_of(response.headers.get("content-disposition", ""))
                name = safe_file_name(name, f"file-{message_id}")
                handle, temporary = tempfile.mkstemp(
                    prefix=".pairchat-", suffix=".part", dir=target
                )
                try:
                    with os.fdopen(handle, "wb") as out:
                        async for chunk in response.aiter_bytes():
                            out.write(chunk)
                    return place(Path(temporary), target, name)
                finally:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(temporary)
        except httpx.TransportError as exc:
            raise ServerUnreachable(self.base_url, type(exc).__name__) from exc

    async def files(self, other: str) -> tuple[SharedFile, ...]:
        """The pair's files, newest first."""
        params = _fields(user_one=self._me(), user_two=other)
        return await self._call("GET", "/files", SharedFile.parse_list, params=params)

    async def edit_message(self, other: str, message_id: int, text: str) -> Message:
        data = _fields(user_one=self._me(), user_two=other, id=message_id, message=text)
        return await self._call("POST", "/edit_message", changed_message, data=data)

    async def delete_message(self, other: str, message_id: int) -> Message:
        data = _fields(user_one=self._me(), user_two=other, id=message_id)
        return await self._call("POST", "/delete_message", changed_message, data=data)

    async def react(self, other: str, message_id: int, emoji: str) -> Message:
        """Set my one reaction to a message (``""``: remove it); the message as it is now."""
        data = _fields(user_one=self._me(), user_two=other, id=message_id)
        data["emoji"] = emoji  # "" is meaningful here: remove
        return await self._call("POST", "/react", changed_message, data=data)

    async def search_messages(
        self, other: str, query: str, *, before_id: int | None = None, limit: int | None = None
    ) -> SearchResults:
        data = _fields(
            user_one=self._me(), user_two=other, q=query, before_id=before_id, limit=limit
        )
        return await self._call("POST", "/search_messages", SearchResults.parse, data=data)

    async def typing(self, other: str) -> bool:
        return await self._call("POST", "/typing", success, data={"username": other})

    async def settings(self, **values: bool) -> dict[str, Any]:
        """Change some settings (``read_receipts``, ``typing``); the reply has them all."""
        data = {key: "true" if value else "false" for key, value in values.items()}
        return await self._call("POST", "/settings", settings_of, data=data)

    # -- friends and the change feed ---------------------------------------------------
    async def friends(self) -> FriendList:
        return await self._call("GET", "/friends", FriendList.parse)

    async def add_friend(self, username: str) -> bool:
        return await self._call("POST", "/add_friend", success, data={"username": username})

    async def remove_friend(self, username: str) -> bool:
        return await self._call("POST", "/remove_friend", success, data={"username": username})

    async def block_friend(self, username: str) -> bool:
        return await self._call("POST", "/block_friend", success, data={"username": username})

    async def unblock_friend(self, username: str) -> bool:
        return await self._call("POST", "/unblock_friend", success, data={"username": username})

    async def mark_read(self, username: str, last_read_id: int) -> int:
        data = _fields(username=username, last_read_id=last_read_id)
        return await self._call("POST", "/mark_read", unread_count, data=data)

    async def updates(self, since: str | None = None, wait: float | None = None) -> Feed:
        params = _fields(since=since or None, wait=wait or None)
        response = await self._send("GET", "/updates", params=params, wait=wait)
        feed = self._read(response, Feed.parse)
        after = retry_after(response)
        return feed if after is None else replace(feed, retry_after=after)

    async def events(self, since: str | None = None) -> AsyncGenerator[StreamItem]:
        """``GET /events``: the change feed as one held stream, resumed after ``since``.

        Yields each ``feed`` event as a :class:`~tui.client.models.Feed` (the first at
        once: everything without ``since``, what changed since it with one), each
        ``retry:`` as a :class:`~tui.client.events.Retry`, and the server's last word as
        a :class:`~tui.client.events.StreamEnd`; it ends when the server closes the
        stream. The cursor goes in ``Last-Event-ID``, as an EventSource resumes.

        Raises :class:`ApiError` for an error reply (404 from a server without the
        route; ``retry_after`` set from a 503's ``Retry-After``) or a 200 that is no
        event stream (code ``not_event_stream``), and :class:`ServerUnreachable` when
        the connection fails or stays silent for ``STREAM_READ_TIMEOUT``. Close it with
        ``aclose()`` (or ``contextlib.aclosing``) to hang up early.
        """
        headers = self._headers()
        headers["Accept"] = EVENT_STREAM
        headers["Cache-Control"] = "no-store"
        if since:
            headers["Last-Event-ID"] = since
        timeout = httpx.Timeout(self.timeout, read=STREAM_READ_TIMEOUT)
        parser = EventParser()
        try:
            async with self._client().stream(
                "GET", self.base_url + "/events", headers=headers, timeout=timeout
            ) as response:
                if response.status_code >= 400:
                    await response.aread()
                    self._read(response, bytes)  # raises its ApiError
                kind = response.headers.get("content-type", "")
                if kind.split(";")[0].strip().lower() != EVENT_STREAM:
                    raise ApiError(
                        response.status_code,
                        NOT_EVENT_STREAM,
                        f"the reply to /events is not an event stream ({kind or 'no type'})",
                    )
                async for chunk in response.aiter_bytes():
                    for found in _stream_items(parser, chunk):
                        yield found
        except httpx.TransportError as exc:
            raise ServerUnreachable(self.base_url, type(exc).__name__) from exc
        except httpx.DecodingError as exc:
            raise ApiError(200, "bad_reply", f"the event stream cannot be read: {exc}") from exc


def _stream_items(parser: EventParser, chunk: bytes) -> list[StreamItem]:
    """What ``chunk`` of an event stream completes, decoded; a broken event is a bad reply."""
    items: list[StreamItem] = []
    try:
        for event in parser.feed(chunk):
            item = event if isinstance(event, Retry) else read_item(event)
            if item is not None:
                items.append(item)
    except BadReply as exc:
        raise ApiError(200, "bad_reply", str(exc)) from exc
    return items
