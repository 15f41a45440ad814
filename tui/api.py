"""The pairchat HTTP client: every route of docs/api.md, sync and async, no Textual.

This is the one place that knows URLs, field names and error shapes. The TUI uses
:class:`AsyncPairchatClient` from its async workers (cancelling a worker aborts
its request at once, so switching chats or quitting never waits on a long-poll);
scripts, benchmarks and tests use :class:`PairchatClient`. Both share the request
descriptions below, so a route is described once.

Errors: a JSON error reply raises :class:`ApiError` (``status``, ``code``,
``message``); a connection failure or timeout raises :class:`ServerUnreachable`
(with the URL that was tried).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import httpx

T = TypeVar("T")

DEFAULT_TIMEOUT = 10.0
"""Seconds for connect and read on ordinary requests."""
LONG_POLL_MARGIN = 10.0
"""Extra read time allowed on top of a ``wait`` the server may hold a request for."""


class ServerUnreachable(Exception):
    """The server could not be reached (refused, reset, timed out, DNS)."""

    def __init__(self, url: str, reason: str = "") -> None:
        super().__init__(f"cannot reach the server at {url}" + (f" ({reason})" if reason else ""))
        self.url = url
        self.reason = reason


class ApiError(Exception):
    """The server answered with an error: ``status`` plus the JSON ``error`` code."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message

    @property
    def transient(self) -> bool:
        """Worth retrying later as is (server trouble or rate limit, not bad input)."""
        return self.status >= 500 or self.status == 429


# -- reply types ----------------------------------------------------------------


@dataclass(frozen=True)
class Session:
    username: str
    display_name: str
    token: str = ""


@dataclass(frozen=True)
class HistoryPage:
    messages: list[dict[str, Any]]
    has_more: bool


@dataclass(frozen=True)
class Sent:
    id: int
    date_sent: Any
    duplicate: bool


@dataclass(frozen=True)
class Friends:
    friends: list[dict[str, Any]]
    blocked: list[str]


@dataclass(frozen=True)
class Updates:
    cursor: str
    changed: list[dict[str, Any]]


def _session(reply: dict[str, Any]) -> Session:
    return Session(
        username=str(reply["username"]),
        display_name=str(reply.get("display_name") or ""),
        token=str(reply.get("token") or ""),
    )


def _history(reply: dict[str, Any]) -> HistoryPage:
    return HistoryPage(list(reply.get("history", [])), bool(reply.get("has_more", False)))


def _sent(reply: dict[str, Any]) -> Sent:
    return Sent(int(reply["id"]), reply.get("date_sent"), bool(reply.get("duplicate", False)))


def _friends(reply: dict[str, Any]) -> Friends:
    return Friends(list(reply.get("friends", [])), [str(b) for b in reply.get("blocked", [])])


def _updates(reply: dict[str, Any]) -> Updates:
    return Updates(str(reply.get("cursor", "")), list(reply.get("changed", [])))


def _unread(reply: dict[str, Any]) -> int:
    return int(reply.get("unread", 0))


def _ok(reply: dict[str, Any]) -> bool:
    return bool(reply.get("success", True))


def _raw(reply: dict[str, Any]) -> dict[str, Any]:
    return reply


# -- request descriptions --------------------------------------------------------


@dataclass(frozen=True)
class Call(Generic[T]):
    """One HTTP request and how to read its reply."""

    method: str
    path: str
    parse: Callable[[dict[str, Any]], T]
    data: Mapping[str, Any] | None = None
    params: Mapping[str, Any] | None = None
    timeout: float | None = None
    auth: bool = True


def _fields(**values: Any) -> dict[str, Any]:
    """Form fields, leaving out the optional ones not given."""
    return {k: str(v) for k, v in values.items() if v is not None}


def _wait_timeout(wait: float | None, base: float) -> float | None:
    return None if not wait else max(base, wait + LONG_POLL_MARGIN)


@dataclass
class _Base:
    """State and request building shared by the sync and async clients."""

    base_url: str
    token: str | None = None
    username: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    _headers: dict[str, str] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        self.base_url = self.base_url.rstrip("/")

    def _auth_headers(self, call: Call[Any]) -> dict[str, str]:
        if call.auth and self.token:
            return {"Authorization": f"Bearer {self.token}"}
        return {}

    def _url(self, call: Call[Any]) -> str:
        return self.base_url + call.path

    def _read(self, call: Call[T], response: httpx.Response) -> T:
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code >= 400 or not isinstance(body, dict):
            if isinstance(body, dict):
                raise ApiError(
                    response.status_code,
                    str(body.get("error", "error")),
                    str(body.get("message", response.reason_phrase)),
                )
            if response.status_code < 400:
                raise ApiError(response.status_code, "bad_reply", "the reply was not JSON")
            raise ApiError(response.status_code, "http_error", response.reason_phrase)
        return call.parse(body)

    def _remember(self, session: Session) -> Session:
        self.token = session.token or self.token
        self.username = session.username
        return session

    # Request builders, one per route. ``me`` is needed where the API asks for it.
    def _me_name(self) -> str:
        if not self.username:
            raise ValueError("sign in first: the client does not know its username")
        return self.username

    @staticmethod
    def _c_register(username: str, password: str, display_name: str | None) -> Call[Session]:
        data = _fields(username=username, password=password, display_name=display_name or None)
        return Call("POST", "/register", _session, data=data, auth=False)

    @staticmethod
    def _c_login(username: str, password: str) -> Call[Session]:
        data = _fields(username=username, password=password)
        return Call("POST", "/login", _session, data=data, auth=False)

    def _c_history(
        self,
        other: str,
        after_id: int | None,
        before_id: int | None,
        limit: int | None,
        wait: float | None,
    ) -> Call[HistoryPage]:
        data = _fields(
            user_one=self._me_name(),
            user_two=other,
            after_id=after_id,
            before_id=before_id,
            limit=limit,
            wait=wait if wait else None,
        )
        timeout = _wait_timeout(wait, self.timeout)
        return Call("POST", "/get_message_history", _history, data=data, timeout=timeout)

    def _c_send(self, to: str, text: str, client_id: str | None) -> Call[Sent]:
        data = _fields(author=self._me_name(), message=text, client_id=client_id)
        return Call("POST", f"/send_message/{to}", _sent, data=data)

    def _c_updates(self, since: str | None, wait: float | None) -> Call[Updates]:
        params = _fields(since=since or None, wait=wait if wait else None)
        timeout = _wait_timeout(wait, self.timeout)
        return Call("GET", "/updates", _updates, params=params, timeout=timeout)

    def _c_create(self, other: str) -> Call[bool]:
        data = _fields(user_one=self._me_name(), user_two=other)
        return Call("POST", "/create_conversation_db", _ok, data=data)

    @staticmethod
    def _c_friend(route: str, username: str) -> Call[bool]:
        return Call("POST", f"/{route}", _ok, data={"username": username})


class PairchatClient(_Base):
    """Blocking client (scripts, benchmarks, tests, thread workers)."""

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        username: str | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(base_url, token=token, username=username, timeout=timeout)
        self._http = httpx.Client(timeout=timeout, transport=transport)

    def __enter__(self) -> PairchatClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def call(self, call: Call[T]) -> T:
        try:
            response = self._http.request(
                call.method,
                self._url(call),
                data=call.data,
                params=call.params,
                headers=self._auth_headers(call),
                timeout=call.timeout or self.timeout,
            )
        except httpx.TransportError as exc:
            raise ServerUnreachable(self.base_url, type(exc).__name__) from exc
        return self._read(call, response)

    # accounts
    def register(self, username: str, password: str, display_name: str | None = None) -> Session:
        return self._remember(self.call(self._c_register(username, password, display_name)))

    def login(self, username: str, password: str) -> Session:
        return self._remember(self.call(self._c_login(username, password)))

    def logout(self) -> bool:
        return self.call(Call("POST", "/logout", _ok))

    def me(self) -> Session:
        session = self.call(Call("GET", "/me", _session))
        self.username = session.username
        return session

    def healthz(self) -> dict[str, Any]:
        return self.call(Call("GET", "/healthz", _raw, auth=False))

    # conversations
    def create_conversation(self, other: str) -> bool:
        return self.call(self._c_create(other))

    def history(
        self,
        other: str,
        *,
        after_id: int | None = None,
        before_id: int | None = None,
        limit: int | None = None,
        wait: float | None = None,
    ) -> HistoryPage:
        return self.call(self._c_history(other, after_id, before_id, limit, wait))

    def send(self, to: str, text: str, client_id: str | None = None) -> Sent:
        return self.call(self._c_send(to, text, client_id))

    # friends and the change feed
    def friends(self) -> Friends:
        return self.call(Call("GET", "/friends", _friends))

    def add_friend(self, username: str) -> bool:
        return self.call(self._c_friend("add_friend", username))

    def remove_friend(self, username: str) -> bool:
        return self.call(self._c_friend("remove_friend", username))

    def block_friend(self, username: str) -> bool:
        return self.call(self._c_friend("block_friend", username))

    def unblock_friend(self, username: str) -> bool:
        return self.call(self._c_friend("unblock_friend", username))

    def mark_read(self, username: str, last_read_id: int) -> int:
        data = _fields(username=username, last_read_id=last_read_id)
        return self.call(Call("POST", "/mark_read", _unread, data=data))

    def updates(self, since: str | None = None, wait: float | None = None) -> Updates:
        return self.call(self._c_updates(since, wait))


class AsyncPairchatClient(_Base):
    """Asyncio client, used by the TUI's workers: cancellation aborts the request."""

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        username: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(base_url, token=token, username=username, timeout=timeout)
        self._transport = transport
        self._http: httpx.AsyncClient | None = None

    def _client(self) -> httpx.AsyncClient:
        # Created lazily, inside the running event loop that will use it.
        if self._http is None:
            limits = httpx.Limits(max_connections=20, max_keepalive_connections=10)
            self._http = httpx.AsyncClient(
                timeout=self.timeout, transport=self._transport, limits=limits
            )
        return self._http

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    async def call(self, call: Call[T]) -> T:
        try:
            response = await self._client().request(
                call.method,
                self._url(call),
                data=call.data,
                params=call.params,
                headers=self._auth_headers(call),
                timeout=call.timeout or self.timeout,
            )
        except httpx.TransportError as exc:
            raise ServerUnreachable(self.base_url, type(exc).__name__) from exc
        return self._read(call, response)

    # accounts
    async def register(
        self, username: str, password: str, display_name: str | None = None
    ) -> Session:
        return self._remember(await self.call(self._c_register(username, password, display_name)))

    async def login(self, username: str, password: str) -> Session:
        return self._remember(await self.call(self._c_login(username, password)))

    async def logout(self) -> bool:
        return await self.call(Call("POST", "/logout", _ok))

    async def me(self) -> Session:
        session = await self.call(Call("GET", "/me", _session))
        self.username = session.username
        return session

    async def healthz(self) -> dict[str, Any]:
        return await self.call(Call("GET", "/healthz", _raw, auth=False))

    # conversations
    async def create_conversation(self, other: str) -> bool:
        return await self.call(self._c_create(other))

    async def history(
        self,
        other: str,
        *,
        after_id: int | None = None,
        before_id: int | None = None,
        limit: int | None = None,
        wait: float | None = None,
    ) -> HistoryPage:
        return await self.call(self._c_history(other, after_id, before_id, limit, wait))

    async def send(self, to: str, text: str, client_id: str | None = None) -> Sent:
        return await self.call(self._c_send(to, text, client_id))

    # friends and the change feed
    async def friends(self) -> Friends:
        return await self.call(Call("GET", "/friends", _friends))

    async def add_friend(self, username: str) -> bool:
        return await self.call(self._c_friend("add_friend", username))

    async def remove_friend(self, username: str) -> bool:
        return await self.call(self._c_friend("remove_friend", username))

    async def block_friend(self, username: str) -> bool:
        return await self.call(self._c_friend("block_friend", username))

    async def unblock_friend(self, username: str) -> bool:
        return await self.call(self._c_friend("unblock_friend", username))

    async def mark_read(self, username: str, last_read_id: int) -> int:
        data = _fields(username=username, last_read_id=last_read_id)
        return await self.call(Call("POST", "/mark_read", _unread, data=data))

    async def updates(self, since: str | None = None, wait: float | None = None) -> Updates:
        return await self.call(self._c_updates(since, wait))
