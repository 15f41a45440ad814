"""A reverse proxy in front of a real test server, that buffers replies as some proxies do.

:class:`BufferingProxy` listens on 127.0.0.1 and passes each connection to the
server's port, with one twist: it holds the server's reply bytes until the server
closes the connection or ``limit`` bytes (64 KiB) have piled up, and only then
passes them on — what nginx with ``proxy_buffering on`` (ignoring
``X-Accel-Buffering``), or many a corporate proxy, does. A complete reply still
gets through (each upstream connection carries one request, ``Connection: close``,
so the server closes it when the reply is done); an event stream's first event does
not, as the server never closes a live stream.

``buffer=False`` passes the bytes on as they come; ``no_events=True`` answers
``/events`` itself with the 404 a server without the route gives (the rest still
goes to the real server). It runs its own event loop in a thread, so a test that
blocks its own loop (a ``BlockingClient`` call) does not stall it. Plain asyncio
streams, no HTTP library: it sees bytes, as a proxy does.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from types import TracebackType

LIMIT = 64 * 1024
NOT_FOUND = b'{"error": "not_found", "message": "no such route"}'


class BufferingProxy:
    def __init__(
        self,
        upstream_port: int,
        *,
        buffer: bool = True,
        no_events: bool = False,
        limit: int = LIMIT,
    ) -> None:
        self.upstream_port = upstream_port
        self.buffer = buffer
        self.no_events = no_events
        self.limit = limit
        self.port = 0
        self.requests: list[str] = []
        """``METHOD target`` of every request seen, in order."""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def paths(self, method: str = "GET") -> list[str]:
        """The paths (no query) of the requests seen with ``method``."""
        found = [r.split(" ", 1) for r in list(self.requests)]
        return [target.split("?", 1)[0] for m, target in found if m == method]

    # -- running ----------------------------------------------------------------------
    def start(self) -> BufferingProxy:
        ready = threading.Event()

        def run() -> None:
            loop = self._loop = asyncio.new_event_loop()
            self._server = loop.run_until_complete(
                asyncio.start_server(self._connection, "127.0.0.1", 0)
            )
            self.port = self._server.sockets[0].getsockname()[1]
            ready.set()
            loop.run_forever()
            loop.close()

        self._thread = threading.Thread(target=run, name="buffering-proxy", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("the proxy did not start")
        return self

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        asyncio.run_coroutine_threadsafe(self._close(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        self._loop = self._thread = None

    async def _close(self) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)

    def __enter__(self) -> BufferingProxy:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- one client connection: one request ---------------------------------------------
    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        upstream: asyncio.StreamWriter | None = None
        pump: asyncio.Task[None] | None = None
        try:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                return
            request_line, _, rest = head.partition(b"\r\n")
            method, target, _ = request_line.decode("latin-1").split(" ", 2)
            self.requests.append(f"{method} {target}")
            if self.no_events and target.split("?", 1)[0] == "/events":
                writer.write(_reply(404, NOT_FOUND))
                await writer.drain()
                return
            fields = [
                line
                for line in rest.split(b"\r\n")
                if line and not line.lower().startswith(b"connection:")
            ]
            up_reader, upstream = await asyncio.open_connection("127.0.0.1", self.upstream_port)
            upstream.write(b"\r\n".join([request_line, *fields, b"Connection: close", b"", b""]))
            pump = asyncio.create_task(_pump(reader, upstream))
            await self._pass_back(up_reader, writer)
        except (ConnectionError, OSError):
            return
        finally:
            if pump is not None:
                pump.cancel()
            for end in (upstream, writer):
                if end is not None:
                    end.close()
            self._connections.discard(task)

    async def _pass_back(
        self, up_reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """The server's reply to the client: held back (buffer) or as it comes."""
        held = bytearray()
        first = True
        while chunk := await up_reader.read(65536):
            held += chunk
            if not self.buffer or len(held) >= self.limit:
                writer.write(_closing(bytes(held)) if first else bytes(held))
                await writer.drain()
                first = False
                held.clear()
        if held:
            writer.write(_closing(bytes(held)) if first else bytes(held))
            await writer.drain()


async def _pump(reader: asyncio.StreamReader, upstream: asyncio.StreamWriter) -> None:
    """The rest of the client's request (its body) to the server; the client hanging up
    hangs up on the server too."""
    with contextlib.suppress(ConnectionError, OSError):
        while chunk := await reader.read(65536):
            upstream.write(chunk)
            await upstream.drain()
    upstream.close()


def _closing(reply: bytes) -> bytes:
    """The reply with ``Connection: close`` (this proxy carries one request per connection,
    so the client must not send another on it)."""
    status_line, sep, rest = reply.partition(b"\r\n")
    return status_line + sep + b"Connection: close\r\n" + rest if sep else reply


def _reply(status: int, body: bytes) -> bytes:
    head = (
        f"HTTP/1.1 {status} {'NOT FOUND' if status == 404 else 'ERROR'}\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode("ascii") + body
