"""A minimal HTTP/1.1 keep-alive client on asyncio streams, for load generation.

httpx costs more CPU per request than the server's trivial endpoint does, and
the load generator shares this machine's two cores with the server; this client
writes a request line and reads a ``Content-Length`` (or chunked) reply, and
nothing else, so more of the machine is left to the server under test. It only
talks to 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class HttpError(Exception):
    """An unexpected status or a malformed reply."""


class Connection:
    """One keep-alive connection; reconnects when the server closes it."""

    def __init__(self, host: str, port: int, token: str | None = None) -> None:
        if host not in ("127.0.0.1", "localhost"):
            raise ValueError("benchmarks only talk to 127.0.0.1")
        self.host = host
        self.port = port
        self.token = token
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self._reader is None or self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        return self._reader, self._writer

    async def close(self) -> None:
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()

    def _encode(self, method: str, path: str, fields: dict[str, Any] | None) -> bytes:
        head = f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
        if self.token is not None:
            head += f"Authorization: Bearer {self.token}\r\n"
        body = b""
        if fields is not None:
            body = urlencode(fields).encode()
            head += "Content-Type: application/x-www-form-urlencoded\r\n"
        if method != "GET" or body:
            head += f"Content-Length: {len(body)}\r\n"
        return (head + "\r\n").encode() + body

    async def request(
        self, method: str, path: str, fields: dict[str, Any] | None = None, expect: int = 200
    ) -> Reply:
        """Send one request and read its reply; retries once on a stale connection."""
        data = self._encode(method, path, fields)
        for attempt in (1, 2):
            reader, writer = await self._connect()
            try:
                writer.write(data)
                reply, keep = await _read_reply(reader)
            except (ConnectionError, asyncio.IncompleteReadError):
                await self.close()
                if attempt == 2:
                    raise
                continue
            if not keep:
                await self.close()
            if expect and reply.status != expect:
                raise HttpError(f"{method} {path}: {reply.status} {reply.body[:200]!r}")
            return reply
        raise AssertionError("unreachable")

    async def get(self, path: str, expect: int = 200) -> Reply:
        return await self.request("GET", path, None, expect)

    async def post(self, path: str, fields: dict[str, Any], expect: int = 200) -> Reply:
        return await self.request("POST", path, fields, expect)


async def _read_reply(reader: asyncio.StreamReader) -> tuple[Reply, bool]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
        raise HttpError(f"bad status line {lines[0]!r}")
    status = int(parts[1])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    keep = headers.get("connection", "").lower() != "close" and parts[0] == "HTTP/1.1"
    if "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        chunks: list[bytes] = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            chunks.append(await reader.readexactly(size + 2))
            if size == 0:
                break
            chunks[-1] = chunks[-1][:-2]
        body = b"".join(chunks[:-1])
    else:
        body = await reader.read()
        keep = False
    return Reply(status, body), keep
