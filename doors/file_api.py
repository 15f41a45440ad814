"""The API's file routes as the SSH door's SFTP tree uses them, for one signed-in account.

``GET /friends`` (the folders), ``GET /files`` (a pair's files, newest first),
``GET /file/<id>`` (the bytes, streamed; from an offset with ``Range``) and
``POST /send_file/<peer>`` (multipart, streamed from a file on disk). Every request
carries the session's token and the door's word for who the visitor is, as the TUI's
requests do. Whatever the API refuses, or cannot be reached for, becomes one
:class:`FileRefused` with the API's status, code and sentence; nothing here knows SFTP.
"""

from __future__ import annotations

import contextlib
import math
import mimetypes
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import IO, Any

import httpx

UNAVAILABLE = 503


@dataclass(frozen=True)
class RemoteFile:
    """One file of a pair, as ``GET /files`` lists it."""

    id: int
    author: str
    date_sent: int
    name: str
    size: int
    type: str


class FileRefused(Exception):
    """The API said no (or did not answer): its status, code and sentence."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass
class FileApi:
    """The file routes for ``username`` (its session ``token``) on the API at ``url``."""

    http: httpx.AsyncClient
    url: str
    username: str
    token: str
    visitor_headers: Mapping[str, str]

    def _headers(self, **more: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", **self.visitor_headers, **more}

    def _pair(self, peer: str) -> dict[str, str]:
        return {"user_one": self.username, "user_two": peer}

    async def _get_json(self, path: str, params: Mapping[str, str] | None = None) -> Any:
        try:
            reply = await self.http.get(
                f"{self.url}{path}", params=params or {}, headers=self._headers()
            )
        except httpx.HTTPError as exc:
            raise unavailable(exc) from None
        if reply.status_code != 200:
            raise refusal(reply)
        try:
            return reply.json()
        except ValueError:
            raise FileRefused(UNAVAILABLE, "bad_reply", f"{path} answered no JSON") from None

    async def peers(self) -> list[str]:
        """The people I have a conversation with: friends, then message requests."""
        body = await self._get_json("/friends")
        names: list[str] = []
        for group in ("friends", "requests"):
            for friend in body.get(group) or ():
                name = friend.get("username") if isinstance(friend, dict) else None
                if isinstance(name, str) and name and name not in names:
                    names.append(name)
        return names

    async def files(self, peer: str) -> list[RemoteFile]:
        """The pair's files, newest first (a reply this door cannot read is skipped)."""
        body = await self._get_json("/files", self._pair(peer))
        found: list[RemoteFile] = []
        for item in body.get("files") or ():
            with contextlib.suppress(KeyError, TypeError, ValueError):
                found.append(
                    RemoteFile(
                        id=int(item["id"]),
                        author=str(item.get("author") or ""),
                        date_sent=_seconds(item.get("date_sent")),
                        name=str(item["name"]),
                        size=max(0, int(item.get("size") or 0)),
                        type=str(item.get("type") or "application/octet-stream"),
                    )
                )
        return found

    async def open_download(self, peer: str, file_id: int, offset: int) -> Download:
        """A streaming reply for the file's bytes from ``offset`` (Range when not 0)."""
        extra = {"Accept-Encoding": "identity"}
        if offset:
            extra["Range"] = f"bytes={offset}-"
        request = self.http.build_request(
            "GET",
            f"{self.url}/file/{file_id}",
            params=self._pair(peer),
            headers=self._headers(**extra),
        )
        try:
            reply = await self.http.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise unavailable(exc) from None
        if reply.status_code not in (200, 206):
            await reply.aread()
            await reply.aclose()
            raise refusal(reply)
        # A server that ignores Range answers 200 and the whole file: skip to the offset.
        return Download(reply, skip=offset if reply.status_code == 200 else 0)

    async def send_file(
        self, peer: str, name: str, body: IO[bytes], client_id: str
    ) -> Mapping[str, Any]:
        """``POST /send_file/<peer>`` with ``body`` (read in chunks, never whole) as ``name``.

        The same ``client_id`` on every try: the API stores the file once however
        often it arrives; a try that could not reach the API is made again once."""
        kind = file_type(name)
        for attempt in (1, 2):
            body.seek(0)
            try:
                reply = await self.http.post(
                    f"{self.url}/send_file/{peer}",
                    # the author in the query too: the multi-node router places the
                    # upload by the pair from the path and ?author= (docs/cluster.md)
                    params={"author": self.username},
                    data={"author": self.username, "client_id": client_id},
                    files={"file": (name, body, kind)},
                    headers=self._headers(),
                    timeout=httpx.Timeout(120.0, connect=5.0),
                )
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                if attempt == 2:
                    raise unavailable(exc) from None
                continue
            except httpx.TransportError as exc:
                # The API refuses a body declared more than 64 MiB over its limit before
                # reading it and closes the connection; httpx, still sending, sees only
                # the close (a smaller one over the limit gets the API's 413 sentence).
                if attempt == 2:
                    raise FileRefused(
                        UNAVAILABLE,
                        "connection_closed",
                        f"the server closed the connection while {name} "
                        f"({_size(body)} bytes) was being sent ({type(exc).__name__}): "
                        "it may be larger than the server takes for one file",
                    ) from None
                continue
            if reply.status_code not in (200, 201):
                raise refusal(reply)
            try:
                answer: Mapping[str, Any] = reply.json()
            except ValueError:
                answer = {}
            return answer
        raise AssertionError("unreachable")  # pragma: no cover


class Download:
    """One streaming reply: bytes from where it started, in order."""

    def __init__(self, reply: httpx.Response, skip: int = 0) -> None:
        self.reply = reply
        self._skip = skip
        self._chunks: AsyncIterator[bytes] = reply.aiter_bytes()

    async def next_chunk(self) -> bytes:
        """The next bytes, or b"" at the end."""
        try:
            while True:
                chunk = await anext(self._chunks)
                if self._skip:
                    dropped = min(self._skip, len(chunk))
                    self._skip -= dropped
                    chunk = chunk[dropped:]
                if chunk:
                    return chunk
        except StopAsyncIteration:
            return b""
        except httpx.HTTPError as exc:
            raise unavailable(exc) from None

    async def close(self) -> None:
        await self.reply.aclose()


def refusal(reply: httpx.Response) -> FileRefused:
    """The API's JSON error as a :class:`FileRefused` (or the status, if not JSON)."""
    code, message = "error", f"the server answered {reply.status_code}"
    with contextlib.suppress(ValueError, AttributeError):
        body = reply.json()
        if isinstance(body.get("error"), str):
            code = body["error"]
        if isinstance(body.get("message"), str) and body["message"].strip():
            message = " ".join(body["message"].split())[:300]
    return FileRefused(reply.status_code, code, message)


def unavailable(exc: Exception) -> FileRefused:
    why = str(exc) or type(exc).__name__
    return FileRefused(
        UNAVAILABLE, "unavailable", f"pairchat cannot reach its server right now ({why})"
    )


def _size(body: IO[bytes]) -> int:
    body.seek(0, 2)
    return body.tell()


def _seconds(value: object) -> int:
    if isinstance(value, bool):
        return 0
    if isinstance(value, int | float) and math.isfinite(value):
        return max(0, int(value))
    return 0


def file_type(name: str) -> str:
    """The type a file of this name is sent as."""
    return mimetypes.guess_type(PurePosixPath(name).name)[0] or "application/octet-stream"
