"""The ASGI front: connections and waiting requests on an event loop, Flask in a thread pool.

``pairchat-server`` runs this under granian's ASGI interface (docs/deploy.md,
"The serving model" says why). Granian's Rust side holds the connections —
idle and keep-alive ones cost no thread and no request slot — and closes any
that take longer than ``header_timeout`` to send their headers or sit idle
that long between requests. Then, per request:

1. the body is read here, on the event loop, within ``body_timeout`` and the
   body limit (slow or oversized bodies never reach a thread: 408 / 413); a file
   upload may be as large as a file may be, and is spooled to disk as it comes;
2. the Flask app runs in a pool of 64 threads (``FLASK_THREADS``), unchanged
   (the same app the tests and ``--dev`` run); of a worker's ``--threads``
   budget, the other ``threads - 64`` are held long-polls, which take none;
3. a long-poll that has to wait does not block its thread: the service leaves
   its ``Wait`` in the ``Parking`` the view offered and the view replies with what
   it has (``backend/http/parking.py``); the front holds that reply and waits on
   the event loop (``Notifier.wait_async``) — a few KiB of memory, no thread. If
   its time runs out, its owner opens a newer wait or the server stops, nothing
   changed: the held reply goes out as it is. If its key moved, the request's
   token is checked and its *query* runs once more (``Held.finish``, not the
   whole request) and answers — or, if the change was not for it, waits on. If the
   client hangs up, the wait is dropped. Event streams (``GET /events``) are held
   the same way for their whole life (``_hold_stream``);
4. the reply goes out as the app produced it; a streamed reply (a whole
   history) is pulled from the app one chunk at a time.

On SIGTERM/SIGINT/SIGHUP the main process first sends its workers
``RELEASE_SIGNAL``: each front answers every held wait at once (with what it
has), and granian's graceful stop then finishes in milliseconds instead of
waiting for long-polls to time out (``backend/server/cli.py`` wires it).

No worker outlives its server: if the main process dies without that (SIGKILL,
an OOM kill), the kernel sends each worker ``ORPHAN_SIGNAL`` (``PR_SET_PDEATHSIG``,
asked for in ``create_front``), and a check of ``os.getppid()`` every
``ORPHAN_CHECK`` s backs it up. The orphaned worker answers its held waits, asks
granian for its graceful stop, and exits for good ``ORPHAN_GRACE`` s later
whatever is still open - so the port and the data folder's lock are free within
2 s and a new server can start.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import io
import logging
import os
import random
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import IO, Any
from urllib.parse import unquote_to_bytes

from flask import Flask

from backend.core import request_ids
from backend.core.errors import PairchatError, RequestTimeout, ServerFull
from backend.core.settings import THREAD_RESERVE, Settings
from backend.http import events, parking, replies
from backend.http.errors import retry_after_value, status_and_code
from backend.http.events import FeedStream
from backend.http.middleware import SECURITY_HEADERS
from backend.http.uploads import UPLOAD_PREFIX
from backend.server import repeats
from backend.server.app import create_app
from backend.server.lifeline import die_with_parent
from backend.server.metrics import GAUGE_PERIOD, RequestMetrics
from backend.services.wiring import Services, build_services
from backend.wakeups.long_poll import Wait
from backend.wakeups.notify import Listener, Outcome
from protocol import events as sse

log = logging.getLogger("pairchat")
Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Any]
Send = Callable[[Message], Any]
FIRST_CHUNK = 256 * 1024  # bytes of a reply sent in one piece before streaming the rest
DRAIN_AT_MOST = 64 * 1024 * 1024
"""Bytes of a file upload past the limit read and dropped before the 413 is sent: a client
that writes its whole body before it reads (httpx, most HTTP libraries) then gets the
answer instead of a reset connection. A body declared larger than the limit and this is
answered at once."""
SPOOL_AFTER = 1024 * 1024  # bytes of an upload held in memory before it goes to a temporary file
Body = bytes | IO[bytes]  # a request's body: in memory, or an upload spooled to disk
RELEASE_SIGNAL = signal.SIGUSR1  # main -> workers: answer every held wait now
ORPHAN_SIGNAL = signal.SIGUSR2  # the kernel -> a worker whose main process died
ORPHAN_CHECK = 0.5  # seconds between checks that the main process is still this worker's parent
ORPHAN_GRACE = 1.0  # seconds an orphaned worker gives its answered waits before it exits
FLASK_THREADS = THREAD_RESERVE  # of a worker's --threads, those that run Flask; the rest wait


@dataclass
class _Reply:
    """What one run of the Flask app produced (or that it parked)."""

    status: int = 500
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: list[bytes] = field(default_factory=list)
    rest: Iterator[bytes] | None = None  # more to stream (the app's iterator)
    closer: Callable[[], None] | None = None
    parked: parking.Held | None = None  # a long-poll to hold, and how to finish it
    stream: FeedStream | None = None  # an event stream to hold after this opening


class _Hangup:
    """Notices the client hanging up while its request waits: ASGI's ``http.disconnect``.

    Made only when a request first parks (most requests never wait).
    """

    __slots__ = ("_future", "_receive")

    def __init__(self, receive: Receive) -> None:
        self._receive = receive
        self._future: asyncio.Future[Any] | None = None

    def future(self) -> asyncio.Future[Any]:
        if self._future is None:
            self._future = asyncio.ensure_future(self._receive())
        return self._future

    def close(self) -> None:
        if self._future is not None and not self._future.done():
            self._future.cancel()


class Front:
    """The ASGI application around one Flask app and its services."""

    def __init__(
        self,
        app: Flask,
        services: Services,
        server_pid: int | None = None,
        metrics: bool = False,
    ) -> None:
        self.app = app
        # what GET /metrics reports (backend/server/metrics.py); None: not asked for
        self.metrics = RequestMetrics(app, services) if metrics else None
        self.streams = 0  # event streams held now
        self.server_pid = server_pid  # the main process (granian's), when this is its worker
        self._orphaned = False
        self._watcher: asyncio.Task[None] | None = None
        self._gauges: asyncio.Task[None] | None = None
        self.services = services
        self.notifier = services.notifier
        self.settings = settings = services.settings
        self.limit = settings.max_content_length
        # Flask's work is short and holds the GIL: a few dozen threads is plenty (waits for a
        # password check or a busy SQLite file are what use more than two). A burst of
        # 1,000 requests queues here rather than starting 1,000 threads.
        self.pool = ThreadPoolExecutor(FLASK_THREADS, thread_name_prefix="pairchat-flask")
        self.repeats = repeats.Repeats(self.notifier, settings.waiter_slots)
        self._security = [
            (name.lower().encode("latin-1"), value.encode("latin-1"))
            for name, value in SECURITY_HEADERS.items()
        ]
        self._ids = request_ids.RequestIds()  # for the replies the front makes itself

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)

    # -- lifespan: hook the stop signals ----------------------------------------------
    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self._hook_signals(asyncio.get_running_loop())
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    def _hook_signals(self, loop: asyncio.AbstractEventLoop) -> None:
        """``RELEASE_SIGNAL`` answers every held wait at once (the main process sends it first
        when it is told to stop, so a stop never waits for long-polls to time out)."""
        loop.add_signal_handler(RELEASE_SIGNAL, self.notifier.close)
        if self.server_pid is not None:
            loop.add_signal_handler(ORPHAN_SIGNAL, self._orphan)
            self._watcher = loop.create_task(self._watch_server())
        if self.metrics is not None:
            self._gauges = loop.create_task(self._publish_gauges(self.metrics))

    async def _publish_gauges(self, metrics: RequestMetrics) -> None:
        """Held waits, streams and open pair files into the metric files each ``GAUGE_PERIOD``."""
        conversations = self.services.conversations
        while not self.notifier.closed:
            streams = self.streams
            waits = max(0, self.notifier.waiting() - streams)
            metrics.held(waits, streams, conversations.open_count())
            await asyncio.sleep(GAUGE_PERIOD)
        metrics.held(0, 0, 0)

    async def _watch_server(self) -> None:
        """The backstop for ``ORPHAN_SIGNAL`` (not Linux; a death before it was asked for)."""
        while not self._orphaned:
            if os.getppid() != self.server_pid:
                self._orphan()
                return
            await asyncio.sleep(ORPHAN_CHECK)

    def _orphan(self) -> None:
        """The main process is gone: answer the held waits, stop, be gone in ``ORPHAN_GRACE``."""
        if self._orphaned:
            return
        self._orphaned = True
        log.warning(
            "the server's main process (pid %s) is gone: worker %d answers its held waits "
            "and stops",
            self.server_pid,
            os.getpid(),
        )
        self.notifier.close()
        # granian's own graceful stop (its loop handler), then a hard exit whatever it waits on
        # (an idle keep-alive connection, a stuck pool thread): nobody is left to kill us.
        threading.Thread(target=_exit_after, args=(ORPHAN_GRACE,), daemon=True).start()
        os.kill(os.getpid(), signal.SIGTERM)

    def close(self) -> None:
        """After granian has answered everything: stop the pool, close the files."""
        self.notifier.close()
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.services.close()

    # -- one request ---------------------------------------------------------------------
    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.monotonic()
        body = await self._read_body(scope, receive, send)
        if body is None:
            return
        loop = asyncio.get_running_loop()
        hangup = _Hangup(receive)
        metrics = self.metrics
        try:
            reply = await self._answer(scope, body, hangup, loop)
            if reply is None:
                return
            if reply.stream is not None:
                stream, reply = reply.stream, _opening(reply)  # the rest of it is not kept
                if metrics is not None:
                    metrics.answered(scope["method"], scope["path"], reply.status, started)
                await self._hold_stream(reply, stream, send, hangup, loop)
            else:
                await self._send_reply(reply, send, loop)
                if metrics is not None:
                    metrics.answered(scope["method"], scope["path"], reply.status, started)
        finally:
            hangup.close()
            if not isinstance(body, bytes):
                body.close()

    async def _answer(
        self, scope: Scope, body: Body, hangup: _Hangup, loop: asyncio.AbstractEventLoop
    ) -> _Reply | None:
        """The reply to send, or None if the client hung up while its wait was held."""
        started = time.monotonic()
        asked = repeats.fingerprint(scope, body if isinstance(body, bytes) else b"")
        deadline: float | None = None
        repeat = self.repeats.find(asked) if isinstance(body, bytes) else None
        if repeat is not None:
            token = repeat.token if repeats.needs_token_check(repeat) else None
            if token is not None and not await loop.run_in_executor(
                self.pool, self._token_valid, token
            ):
                self.repeats.forget(asked)  # the run below answers (401)
            else:
                outcome = await self.notifier.wait_async(
                    repeat.key, repeat.seen, repeat.wait, repeat.owner, hangup.future()
                )
                if outcome is Outcome.GONE:
                    return None
                if outcome is Outcome.FULL:
                    headers = [*repeat.headers, (b"retry-after", _retry_after())]
                    return _Reply(repeat.status, headers, [repeat.body])
                if outcome is not Outcome.CHANGED:
                    return _Reply(repeat.status, repeat.headers, [repeat.body])
                deadline = started + repeat.wait  # the run below waits what is left
        if isinstance(body, bytes):
            environ = self._environ(scope, len(body))
            environ["wsgi.input"] = io.BytesIO(body)
        else:  # an upload, spooled to disk
            environ = self._environ(scope, body.tell())
            body.seek(0)
            environ["wsgi.input"] = body
        if deadline is not None:
            environ[parking.DEADLINE] = deadline
        reply = await loop.run_in_executor(self.pool, self._run_app, environ)
        held = reply.parked
        while held is not None:
            wait = held.wait
            outcome = await self.notifier.wait_async(
                wait.key, wait.seen, wait.deadline - time.monotonic(), wait.owner, hangup.future()
            )
            if outcome is Outcome.GONE:
                return None
            if outcome is Outcome.TIMEOUT:
                self._remember(asked, scope, wait, reply, wait.deadline - started)
            if outcome is Outcome.FULL:  # answered early: told when to come back
                reply.headers.append((b"retry-after", _retry_after()))
            if outcome is not Outcome.CHANGED:
                return reply  # nothing changed: the held reply is the answer
            # The key moved: the query once more, not the whole request (parking.Held).
            try:
                body_now, more = await loop.run_in_executor(self.pool, held.finish, self.notifier)
            except PairchatError as exc:  # the token was revoked meanwhile, or storage failed
                return self._failed(exc)
            reply = _with_body(reply, body_now)
            held = None if more is None else dataclasses.replace(held, wait=more)
        return reply

    def _remember(
        self, asked: repeats.Fingerprint, scope: Scope, park: Wait[Any], reply: _Reply, wait: float
    ) -> None:
        """A wait that ran out with nothing new: the same request will get the same reply."""
        if reply.status != 200 or reply.rest is not None or wait <= 0:
            return
        repeat = repeats.Repeat(
            key=park.key,
            seen=park.seen,
            owner=park.owner,
            wait=wait,
            token=repeats.bearer_token(scope["headers"]),
            status=reply.status,
            headers=reply.headers,
            body=b"".join(reply.body),
            made=time.monotonic(),
        )
        self.repeats.remember(asked, repeat)

    def _token_valid(self, token: str) -> bool:
        """Whether a repeated request's bearer token still stands (in a pool thread)."""
        try:
            self.services.accounts.authenticate(token)
        except PairchatError:
            return False
        return True

    async def _read_body(self, scope: Scope, receive: Receive, send: Send) -> Body | None:
        """The whole body, or None after answering 413/408 (or when the client left).

        A file upload (``UPLOAD_PREFIX``) may be as large as a file may be
        (``Settings.upload_body_limit``) and goes to an unnamed temporary file in the data
        folder once it passes ``SPOOL_AFTER`` bytes, so no upload is held in memory whole.
        """
        upload = scope["path"].startswith(UPLOAD_PREFIX)
        limit = self.settings.upload_body_limit if upload else self.limit
        declared = _header(scope, b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            if not declared.isdigit():
                await self._error(send, 400, "bad_request", "Content-Length is not a number")
            elif upload:
                if int(declared) <= limit + DRAIN_AT_MOST:
                    await _discard_body(receive, DRAIN_AT_MOST, self.settings.body_timeout)
                await self._domain_error(send, self.services.files.too_large())
            else:
                await self._error(send, 413, "too_large", self._too_large())
            return None
        chunks: list[bytes] = []
        spool: IO[bytes] | None = None
        size = 0
        try:
            # One timer for the whole body (granian gives even a small one in two messages).
            async with asyncio.timeout(self.settings.body_timeout):
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        if spool is not None:
                            spool.close()
                        return None
                    chunk = message.get("body", b"")
                    size += len(chunk)
                    if size > limit:
                        break
                    if chunk:
                        chunks.append(chunk)
                    if upload and size > SPOOL_AFTER:
                        if spool is None:
                            spool = tempfile.TemporaryFile(dir=self.settings.data_dir)  # noqa: SIM115
                        spool.writelines(chunks)
                        chunks.clear()
                    if not message.get("more_body", False):
                        if spool is not None:
                            spool.writelines(chunks)
                            return spool
                        return b"".join(chunks)
        except TimeoutError:
            if spool is not None:
                spool.close()
            await self._domain_error(
                send, RequestTimeout("the request body took too long to arrive; send it again")
            )
            return None
        if spool is not None:
            spool.close()
        if upload:
            await _discard_body(receive, DRAIN_AT_MOST, self.settings.body_timeout)
            await self._domain_error(send, self.services.files.too_large())
        else:
            await self._error(send, 413, "too_large", self._too_large())
        return None

    def _too_large(self) -> str:
        return f"the request body is larger than {self.limit} bytes"

    def _environ(self, scope: Scope, size: int) -> dict[str, Any]:
        server = scope.get("server") or ("127.0.0.1", 0)
        client = scope.get("client") or ("", 0)
        raw_path = scope.get("raw_path") or scope["path"].encode("utf-8")
        environ: dict[str, Any] = {
            "REQUEST_METHOD": scope["method"],
            "SCRIPT_NAME": "",
            "PATH_INFO": unquote_to_bytes(raw_path).decode("latin-1"),
            "QUERY_STRING": scope.get("query_string", b"").decode("latin-1"),
            "SERVER_NAME": str(server[0]),
            "SERVER_PORT": str(server[1]),
            "SERVER_PROTOCOL": f"HTTP/{scope.get('http_version', '1.1')}",
            "REMOTE_ADDR": str(client[0]),
            "REMOTE_PORT": str(client[1]),
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": scope.get("scheme", "http"),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": self.settings.workers > 1,
            "wsgi.run_once": False,
            "wsgi.input_terminated": True,
            parking.ENABLED: True,
        }
        for raw_name, raw_value in scope["headers"]:
            name = raw_name.decode("latin-1").upper().replace("-", "_")
            value = raw_value.decode("latin-1")
            if name == "CONTENT_TYPE":
                environ["CONTENT_TYPE"] = value
            elif name == "CONTENT_LENGTH":
                continue
            elif name == "TRANSFER_ENCODING":
                continue  # the body was read whole, above
            else:
                key = f"HTTP_{name}"
                environ[key] = f"{environ[key]},{value}" if key in environ else value
        environ["CONTENT_LENGTH"] = str(size)
        return environ

    def _run_app(self, environ: dict[str, Any]) -> _Reply:
        """One run of the Flask app, in a pool thread: the start of its reply (and its ``Held``)."""
        reply = _Reply()

        def start_response(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Any:
            reply.status = int(status.split(" ", 1)[0])
            reply.headers = [
                (name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers
            ]
            return _no_write

        result: Iterable[bytes] = self.app(environ, start_response)
        close = getattr(result, "close", None)
        reply.parked = environ.get(parking.PARKED)
        reply.stream = environ.get(parking.STREAM)
        iterator = iter(result)
        size = 0
        try:
            for chunk in iterator:
                if chunk:
                    reply.body.append(chunk)
                    size += len(chunk)
                if size >= FIRST_CHUNK:
                    reply.rest = iterator
                    reply.closer = close
                    return reply
        except PairchatError as exc:  # a streamed reply failed before anything was sent
            if close is not None:
                close()
            return self._failed(exc)
        if close is not None:
            close()
        return reply

    def _failed(self, exc: PairchatError) -> _Reply:
        status, code = status_and_code(exc) or (500, "internal_error")
        body = self.app.json.dumps(replies.error(code, exc.message)).encode("utf-8")
        headers = [(b"content-type", b"application/json"), *self._security, self._request_id()]
        return _Reply(status=status, headers=headers, body=[body])

    def _request_id(self) -> tuple[bytes, bytes]:
        """``X-Request-Id`` for a reply the front makes itself (a new id: the app's never ran)."""
        return (b"x-request-id", self._ids.for_request(None).encode("ascii"))

    async def _send_reply(self, reply: _Reply, send: Send, loop: asyncio.AbstractEventLoop) -> None:
        await send(
            {"type": "http.response.start", "status": reply.status, "headers": reply.headers}
        )
        if reply.rest is None:
            await send({"type": "http.response.body", "body": b"".join(reply.body)})
            return
        try:
            await send(
                {"type": "http.response.body", "body": b"".join(reply.body), "more_body": True}
            )
            while True:
                chunk = await loop.run_in_executor(self.pool, _next_chunk, reply.rest)
                if chunk is None:
                    break
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        finally:
            if reply.closer is not None:
                await loop.run_in_executor(self.pool, reply.closer)

    # -- event streams -----------------------------------------------------------------
    async def _hold_stream(
        self,
        opening: _Reply,
        stream: FeedStream,
        send: Send,
        hangup: _Hangup,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        """An event stream: its opening, then events as its key moves, on this loop.

        Idle, it is a ``Listener`` slot and this coroutine awaiting one future:
        the heartbeat rides the shared tick, and a pool thread runs only when the
        user's key moves (``FeedStream.step``).
        """
        listener = self.notifier.listen(stream.key, stream.owner)
        if listener is None:
            await self._domain_error(
                send, ServerFull(parking.FULL_MESSAGE, retry_after=parking.back_off())
            )
            return
        self.streams += 1
        try:
            await send({"type": "http.response.start", "status": 200, "headers": opening.headers})
            await send(_chunk(opening.body[0]))
            del opening  # held for hours: keep only what the stream needs
            gone = hangup.future()
            # The first keep-alive comes after a random part of the period, so streams that
            # opened together (a restart, a ramp) do not send theirs on the same tick forever.
            quiet = stream.heartbeat * random.uniform(0.2, 1.0)
            while True:
                outcome = await listener.wait(stream.seen, quiet, gone)
                quiet = stream.heartbeat
                if outcome is Outcome.GONE:
                    return
                if outcome is Outcome.TIMEOUT:
                    await send(_chunk(sse.HEARTBEAT))
                    continue
                if outcome is not Outcome.CHANGED:  # released: a newer stream, or a stop
                    await send(_chunk(_stream_end(listener, stream)))
                    break
                listener.recheck = False
                events, ended = await loop.run_in_executor(self.pool, stream.step)
                if events:
                    await send(_chunk(events))
                if ended:
                    break
            await send({"type": "http.response.body", "body": b""})
        except (OSError, RuntimeError):
            return  # the client went away mid-send (granian raises RuntimeError for it)
        finally:
            self.streams -= 1
            listener.close()

    async def _domain_error(self, send: Send, exc: PairchatError) -> None:
        status, code = status_and_code(exc) or (500, "internal_error")
        await self._error(send, status, code, exc.message, exc.retry_after)

    async def _error(
        self, send: Send, status: int, code: str, message: str, retry_after: float | None = None
    ) -> None:
        """An error the front answers itself, in the shape every error has."""
        body = self.app.json.dumps(replies.error(code, message)).encode("utf-8")
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode("ascii")),
            (b"connection", b"close"),
            *self._security,
            self._request_id(),
        ]
        if retry_after is not None:
            headers.append((b"retry-after", retry_after_value(retry_after).encode("ascii")))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _opening(reply: _Reply) -> _Reply:
    """A stream's opening, as sent: no Content-Length (it never ends), one body chunk."""
    headers = [(k, v) for k, v in reply.headers if k != b"content-length"]
    return _Reply(reply.status, headers, [b"".join(reply.body)])


def _with_body(reply: _Reply, body: bytes) -> _Reply:
    """The held reply with the body of its finished query (same status and headers)."""
    length = str(len(body)).encode("ascii")
    headers = [
        (name, length if name == b"content-length" else value) for name, value in reply.headers
    ]
    return _Reply(reply.status, headers, [body])


def _chunk(data: bytes) -> Message:
    return {"type": "http.response.body", "body": data, "more_body": True}


def _retry_after() -> bytes:
    return retry_after_value(parking.back_off()).encode("ascii")


def _stream_end(listener: Listener, stream: FeedStream) -> bytes:
    """The last event of a stream the server released: the owner's newer one, or a stop."""
    if listener.released:
        return stream.end("replaced", events.REPLACED)
    return stream.end("shutdown", events.SHUTDOWN)


def _header(scope: Scope, name: bytes) -> str | None:
    for raw_name, raw_value in scope["headers"]:
        if raw_name.lower() == name:
            return str(raw_value.decode("latin-1").strip())
    return None


def _next_chunk(iterator: Iterator[bytes]) -> bytes | None:
    """The next non-empty chunk of a streamed reply, or None at its end (in a pool thread)."""
    for chunk in iterator:
        if chunk:
            return chunk
    return None


def _no_write(data: bytes) -> None:
    raise NotImplementedError("pairchat's app never uses the WSGI write() callable")


def _exit_after(seconds: float) -> None:
    time.sleep(seconds)
    os._exit(0)


def create_front(settings: Settings, server_pid: int | None = None, metrics: bool = False) -> Front:
    """Granian's target loader, run in each worker: that worker's services, app and front.

    ``server_pid`` is the main process that forked this worker: when it dies, so does
    the worker (``Front._orphan``). ``metrics``: record what ``GET /metrics`` on the
    metrics port reports (``backend/server/metrics.py``).
    """
    # Only the main process decides what a hangup means (it stops the server), and
    # RELEASE_SIGNAL must never kill a worker that has not installed its handler yet
    # (nor ORPHAN_SIGNAL: a worker orphaned before that is caught by _watch_server).
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(RELEASE_SIGNAL, signal.SIG_IGN)
    if server_pid is not None:
        signal.signal(ORPHAN_SIGNAL, signal.SIG_IGN)
        die_with_parent(ORPHAN_SIGNAL)
    services = build_services(settings)
    front = Front(create_app(services=services), services, server_pid, metrics)
    # Everything built so far lives as long as the worker: keep the cyclic garbage
    # collector from walking it again on every full collection (tens of ms with
    # Flask, granian and the services loaded; a 3,000-row /friends triggers some).
    gc.collect()
    gc.freeze()
    return front


async def _discard_body(receive: Receive, at_most: int, timeout: float) -> None:
    """Read and drop what is left of a request body, up to ``at_most`` bytes and
    ``timeout`` seconds (a refused upload: so its client reads the refusal)."""
    dropped = 0
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout):
            while dropped <= at_most:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                dropped += len(message.get("body", b""))
                if not message.get("more_body", False):
                    return
