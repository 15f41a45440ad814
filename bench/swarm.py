"""Thousands of held long-polls from several processes: the load harness of (g).

``bench/client.py`` (asyncio streams) and httpx cost too much per connection to
hold 10,000 of them from this machine while it also runs the server. Here each
worker process runs its own uvloop and holds its share of the clients as bare
``asyncio.Protocol`` objects on raw keep-alive sockets: a request is written
whole, the reply is read by its ``Content-Length``, the next request goes out
on the same connection at once. A held client is a socket, a small object and
a buffer — a few KiB — and costs CPU only when its wait ends.

Three kinds of client, each what a real client holds:

- ``history``: ``POST /get_message_history`` with ``after_id`` and ``wait`` on
  its own pair, no token (open mode: anonymous waits are capped per *pair*, so
  one pair per client);
- ``updates``: ``GET /updates?since=...&wait=...`` with its own bearer token,
  after one ``GET /updates`` for the cursor;
- ``events``: one ``GET /events`` stream (Server-Sent Events, chunked) with its
  own bearer token, held for good: its first ``feed`` event makes it held, a
  keep-alive comment is counted and dropped, a later ``feed`` event is counted
  as a change. It asks again (with ``Last-Event-ID``, as an EventSource does)
  only when the stream ends or the connection is lost, and counts that.

The first wait of each long-poll client is drawn uniformly from ``[1, wait]`` so
expiries spread evenly (as clients that came online at different times); every
later one asks for ``wait``. :class:`Swarm` (in the benchmark's process) starts the
workers, hands out clients round-robin and sums their counters; it only ever
talks to 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import resource
import socket
import struct
import subprocess
import sys
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from multiprocessing.connection import Connection as Pipe
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import orjson

CONNECT_AT_ONCE = 256
"""Connections a worker opens concurrently while ramping up (the server's backlog is 2,048)."""
REPO = Path(__file__).resolve().parent.parent
RETRY_PAUSE = 1.0
"""Seconds a client waits after an error reply or a lost connection before asking again."""


@dataclass
class Counters:
    """What a worker (or, summed, the whole swarm) has seen since it started."""

    clients: int = 0
    outstanding: int = 0  # requests written and not yet answered: held, as the client sees it
    # (events: streams whose first event came and that have not ended)
    replies: int = 0  # (events: streams opened, their first event read)
    changed: int = 0  # replies (events: feed events after the first) with something new
    errors: int = 0  # replies that were not 200
    reconnects: int = 0
    heartbeats: int = 0  # events: keep-alive comments read
    ended: int = 0  # events: streams the server ended (a last chunk, or an end event)
    cpu: float = 0.0  # the worker process's own CPU seconds

    def add(self, other: Counters) -> None:
        for name, value in asdict(other).items():
            setattr(self, name, getattr(self, name) + value)


@dataclass(frozen=True)
class Spec:
    """A batch of clients of one kind for one worker."""

    kind: str  # "history" | "updates" | "events"
    host: str
    port: int
    items: list[tuple[str, str]]  # history: (user_one, user_two); else (username, token)
    wait: float
    seed: int


class HeldClient(asyncio.Protocol):
    """One client: ask, read the reply by its length, ask again, on one keep-alive socket."""

    def __init__(self, worker: Worker, spec: Spec, item: tuple[str, str], first_wait: float):
        self.worker = worker
        self.spec = spec
        self.item = item
        self.wait = first_wait
        self.after_id = 0
        self.cursor: str | None = None
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.head_end = -1  # where the reply's body starts, once its head is in
        self.length = 0
        self.status = 0
        self.keep = True
        self.in_flight = False
        self.dropped = False  # closed by the harness: do not come back
        self.ready: asyncio.Future[None] = worker.loop.create_future()  # first long-poll out
        auth = f"Authorization: Bearer {item[1]}\r\n" if spec.kind != "history" else ""
        self.head = f"Host: {spec.host}:{spec.port}\r\n{auth}"

    # -- the requests -----------------------------------------------------------------
    def _request(self) -> bytes:
        if self.spec.kind == "history":
            one, two = self.item
            fields = {"user_one": one, "user_two": two, "after_id": self.after_id}
            body = urlencode({**fields, "wait": f"{self.wait:g}"}).encode()
            return (
                f"POST /get_message_history HTTP/1.1\r\n{self.head}"
                "Content-Type: application/x-www-form-urlencoded\r\n"
                f"Content-Length: {len(body)}\r\n\r\n"
            ).encode() + body
        if self.cursor is None:
            return f"GET /updates HTTP/1.1\r\n{self.head}\r\n".encode()
        query = urlencode({"since": self.cursor, "wait": f"{self.wait:g}"})
        return f"GET /updates?{query} HTTP/1.1\r\n{self.head}\r\n".encode()

    def ask(self) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        self.in_flight = True
        self.worker.counters.outstanding += 1
        self.transport.write(self._request())
        if not self.ready.done() and (self.spec.kind == "history" or self.cursor is not None):
            self.ready.set_result(None)

    # -- asyncio.Protocol -------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's own class
        self.buffer.clear()
        self.head_end = -1
        self.ask()

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while self._parse():
            pass

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if self.dropped:
            return
        if self.in_flight:
            self.in_flight = False
            self.worker.counters.outstanding -= 1
        self.worker.counters.reconnects += 1
        self.worker.loop.call_later(RETRY_PAUSE, self.worker.reconnect, self)

    # -- replies ----------------------------------------------------------------------
    def _parse(self) -> bool:
        """One whole reply out of the buffer, if there is one (True: look again)."""
        if self.head_end < 0:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return False
            self.head_end = end + 4
            head = bytes(self.buffer[:end]).lower()
            self.status = int(head[9:12])
            self.length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name == b"content-length":
                    self.length = int(value)
            self.keep = b"connection: close" not in head
        if len(self.buffer) < self.head_end + self.length:
            return False
        body = bytes(self.buffer[self.head_end : self.head_end + self.length])
        del self.buffer[: self.head_end + self.length]
        self.head_end = -1
        self._answered(body)
        return bool(self.buffer)

    def _answered(self, body: bytes) -> None:
        counters = self.worker.counters
        self.in_flight = False
        counters.outstanding -= 1
        counters.replies += 1
        if self.status != 200:
            counters.errors += 1
            self.worker.loop.call_later(RETRY_PAUSE, self._again)
            return
        reply = orjson.loads(body)
        if self.spec.kind == "history":
            history = reply["history"]
            if history:
                counters.changed += 1
                self.after_id = max(self.after_id, int(history[-1]["id"]))
            self.wait = self.spec.wait
        else:
            if self.cursor is not None:
                counters.changed += bool(reply["changed"])
                self.wait = self.spec.wait
            self.cursor = str(reply["cursor"])
        self._again()

    def _again(self) -> None:
        if self.keep:
            self.ask()
        elif self.transport is not None:
            self.transport.close()  # the server ends this connection: reconnect and ask


HEARTBEAT_CHUNK = b"E\r\n: keep-alive\n\n\r\n"
"""A keep-alive comment as one chunk on the wire: by far the most frequent read."""


class StreamClient(HeldClient):
    """One ``GET /events`` stream held for good on a keep-alive socket.

    The reply's head is read once; then its chunked body is decoded and cut into
    Server-Sent Events at each blank line. The stream counts as held once its
    first ``feed`` event is in. A lost connection or an ended stream reconnects
    (after ``RETRY_PAUSE``) with ``Last-Event-ID`` and is counted.
    """

    def __init__(self, worker: Worker, spec: Spec, item: tuple[str, str], first_wait: float):
        super().__init__(worker, spec, item, first_wait)
        self.chunk_left = -1  # bytes of the current chunk still to come (-1: a size line next)
        self.events = bytearray()  # decoded body not yet cut into events
        self.held = False
        self.last_id: str | None = None

    def _request(self) -> bytes:
        resume = f"Last-Event-ID: {self.last_id}\r\n" if self.last_id is not None else ""
        return f"GET /events HTTP/1.1\r\n{self.head}{resume}\r\n".encode()

    def ask(self) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        self.in_flight = True  # until its first event: not yet held
        self.transport.write(self._request())

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.chunk_left = -1
        self.events.clear()
        super().connection_made(transport)

    def data_received(self, data: bytes) -> None:
        quiet = self.held and self.chunk_left < 0 and not self.buffer and not self.events
        if quiet and data == HEARTBEAT_CHUNK:
            self.worker.counters.heartbeats += 1
            return
        self.buffer += data
        if self.head_end < 0 and not self._head():
            return
        self._chunks()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.dropped:  # the harness closed it and zeroed the counters itself
            self.held = False
        else:
            self._unhold()
        self.in_flight = False
        super().connection_lost(exc)

    def _unhold(self) -> None:
        if self.held:
            self.held = False
            self.worker.counters.outstanding -= 1

    def _head(self) -> bool:
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return False
        head = bytes(self.buffer[:end]).lower()
        self.status = int(head[9:12])
        self.length = -1
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name == b"content-length":
                self.length = int(value)
        if self.status != 200 or b"chunked" not in head:
            # a refusal (503 when full, 401): read nothing more, close, come back later
            self.worker.counters.errors += 1
            self.in_flight = False
            if self.transport is not None:
                self.transport.close()
            return False
        self.head_end = end + 4
        del self.buffer[: self.head_end]
        return True

    def _chunks(self) -> None:
        buffer = self.buffer
        while buffer:
            if self.chunk_left < 0:
                line_end = buffer.find(b"\r\n")
                if line_end < 0:
                    return
                size = int(bytes(buffer[:line_end]).split(b";")[0], 16)
                del buffer[: line_end + 2]
                if size == 0:  # the last chunk: the server ended the stream
                    self.worker.counters.ended += 1
                    self._unhold()
                    if self.transport is not None:
                        self.transport.close()
                    buffer.clear()
                    return
                self.chunk_left = size
            if len(buffer) < self.chunk_left + 2:
                return
            self.events += buffer[: self.chunk_left]
            del buffer[: self.chunk_left + 2]  # the chunk and its CRLF
            self.chunk_left = -1
            self._cut()

    def _cut(self) -> None:
        counters = self.worker.counters
        while True:
            end = self.events.find(b"\n\n")
            if end < 0:
                return
            block = bytes(self.events[:end])
            del self.events[: end + 2]
            if block.startswith(b":"):
                counters.heartbeats += 1
                continue
            name = b""
            for line in block.split(b"\n"):
                field, _, value = line.partition(b":")
                if field == b"event":
                    name = value.strip()
                elif field == b"id":
                    self.last_id = value.strip().decode()
            if name == b"feed":
                if self.held:
                    counters.changed += 1
                else:
                    self.held, self.in_flight = True, False
                    counters.outstanding += 1
                    counters.replies += 1
                    if not self.ready.done():
                        self.ready.set_result(None)
            elif name == b"end":
                counters.ended += 1
                self._unhold()


class Worker:
    """One harness process: its clients, its counters, its commands from the pipe."""

    def __init__(self, loop: asyncio.AbstractEventLoop, pipe: Pipe) -> None:
        self.loop = loop
        self.pipe = pipe
        self.counters = Counters()
        self.clients: list[HeldClient] = []
        self.done: asyncio.Future[None] = loop.create_future()

    async def open(self, spec: Spec) -> tuple[int, int]:
        """Connect the batch; returns (opened, failed) once each has its long-poll out."""
        rng = random.Random(spec.seed)
        gate = asyncio.Semaphore(CONNECT_AT_ONCE)
        failed = 0

        async def one(item: tuple[str, str]) -> None:
            nonlocal failed
            kind = StreamClient if spec.kind == "events" else HeldClient
            client = kind(self, spec, item, rng.uniform(1, spec.wait))
            async with gate:
                try:
                    await self.loop.create_connection(lambda: client, spec.host, spec.port)
                except OSError:
                    failed += 1
                    return
                self.clients.append(client)
                self.counters.clients += 1
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(asyncio.shield(client.ready), 30)

        await asyncio.gather(*(one(item) for item in spec.items))
        return len(spec.items) - failed, failed

    def reconnect(self, client: HeldClient) -> None:
        if client.dropped:
            return

        def retry(future: asyncio.Future[Any]) -> None:
            if future.exception() is not None and not client.dropped:
                self.loop.call_later(RETRY_PAUSE, self.reconnect, client)

        connecting = self.loop.create_connection(lambda: client, client.spec.host, client.spec.port)
        asyncio.ensure_future(connecting).add_done_callback(retry)

    def snapshot(self) -> Counters:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        self.counters.cpu = usage.ru_utime + usage.ru_stime
        return Counters(**asdict(self.counters))

    def close(self) -> None:
        """Drop every connection with a reset (no TIME_WAIT left on the client's ports)."""
        linger = struct.pack("ii", 1, 0)
        for client in self.clients:
            client.dropped = True
            transport = client.transport
            if transport is None:
                continue
            sock = transport.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
            transport.close()
        self.clients.clear()
        self.counters.clients = self.counters.outstanding = 0

    def listen(self) -> None:
        """In a thread: each command from the pipe, handed to the event loop."""
        while True:
            try:
                message = self.pipe.recv()
            except (EOFError, OSError):
                message = ("exit", None)
            self.loop.call_soon_threadsafe(self.on_command, *message)
            if message[0] == "exit":
                return

    def on_command(self, command: str, argument: Any) -> None:
        if command == "open":
            spec = Spec(**argument)

            def opened(task: asyncio.Future[tuple[int, int]]) -> None:
                failed = task.exception() is not None
                self.pipe.send(("opened", (0, len(spec.items)) if failed else task.result()))

            asyncio.ensure_future(self.open(spec)).add_done_callback(opened)
        elif command == "stats":
            self.pipe.send(("stats", asdict(self.snapshot())))
        elif command == "close":
            self.close()
            self.pipe.send(("closed", None))
        elif command == "exit":
            self.close()
            if not self.done.done():
                self.done.set_result(None)


def raise_fd_limit(needed: int) -> int:
    """Raise the soft open-files limit towards the hard one; returns the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard == resource.RLIM_INFINITY else min(hard, max(soft, needed))
    if wanted > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def _worker_main(fd: int, fds: int) -> None:
    """A harness worker: ``python -m bench.swarm FD FDS`` (FD: its end of a socket pair)."""
    raise_fd_limit(fds)
    pipe = Pipe(fd)
    try:
        import uvloop

        loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    worker = Worker(loop, pipe)
    threading.Thread(target=worker.listen, daemon=True).start()
    pipe.send(("ready", os.getpid()))
    loop.run_until_complete(worker.done)
    loop.close()


class Swarm:
    """``processes`` harness workers; use as a context manager (they exit at its end)."""

    def __init__(self, processes: int, clients: int) -> None:
        self.processes = processes
        self.per_worker = clients // processes + 64
        self.pipes: list[Pipe] = []
        self.procs: list[subprocess.Popen[bytes]] = []
        self._next = 0

    def __enter__(self) -> Swarm:
        for _ in range(self.processes):
            ours, theirs = socket.socketpair()
            cmd = [sys.executable, "-m", "bench.swarm", str(theirs.fileno())]
            cmd.append(str(self.per_worker + 256))
            proc = subprocess.Popen(cmd, cwd=REPO, pass_fds=[theirs.fileno()])
            theirs.close()
            self.pipes.append(Pipe(ours.detach()))
            self.procs.append(proc)
        for pipe in self.pipes:
            if not pipe.poll(60):
                self.__exit__()
                raise RuntimeError("a harness worker did not start")
            pipe.recv()
        return self

    def __exit__(self, *exc: object) -> None:
        for pipe in self.pipes:
            with contextlib.suppress(OSError):
                pipe.send(("exit", None))
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()  # ours, by its Popen (PID)
                proc.wait(timeout=5)
        for pipe in self.pipes:
            pipe.close()

    @property
    def pids(self) -> list[int]:
        return [proc.pid for proc in self.procs]

    async def _ask_all(self, command: str, arguments: Sequence[Any]) -> list[Any]:
        for pipe, argument in zip(self.pipes, arguments, strict=True):
            pipe.send((command, argument))
        answers = []
        for pipe in self.pipes:
            _, answer = await asyncio.to_thread(pipe.recv)
            answers.append(answer)
        return answers

    async def open(
        self, kind: str, host: str, port: int, items: Sequence[tuple[str, str]], wait: float
    ) -> tuple[int, int]:
        """Add ``items`` as held clients, spread over the workers; (opened, failed)."""
        if host not in ("127.0.0.1", "localhost"):
            raise ValueError("the harness only talks to 127.0.0.1")
        shares: list[list[tuple[str, str]]] = [[] for _ in self.pipes]
        for item in items:
            shares[self._next % len(shares)].append(item)
            self._next += 1
        specs = [
            Spec(kind, host, port, share, wait, seed=len(share) * 31 + i)
            for i, share in enumerate(shares)
        ]
        answers = await self._ask_all("open", [asdict(spec) for spec in specs])
        return sum(a[0] for a in answers), sum(a[1] for a in answers)

    async def counters(self) -> Counters:
        total = Counters()
        for counters in await self._ask_all("stats", [None] * len(self.pipes)):
            total.add(Counters(**counters))
        return total

    async def close_all(self) -> None:
        """Drop every client (the workers stay, for the next server)."""
        await self._ask_all("close", [None] * len(self.pipes))
        self._next = 0


if __name__ == "__main__":
    _worker_main(int(sys.argv[1]), int(sys.argv[2]))
