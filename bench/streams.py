"""Delivery over an event stream: one pair chats while the receiver holds ``GET /events``.

The receiver opens its own stream (``Authorization: Bearer``) on a raw asyncio
connection, decodes the chunked body and cuts it into Server-Sent Events; each
``feed`` event that names the sender carries that conversation's ``last_id``, and
the moment the event is read is when every message up to that id was *seen*
(the notice a client acts on: the TUI then reads the new messages with one
history request, which (c) measures). The sender sends ``count`` messages
``gap`` seconds apart and notes each one's send time (just before the request
leaves) and its id (from the reply). Only ever talks to 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import orjson

from bench import api
from bench.client import Connection
from bench.delivery import Watch

SEEN_WITHIN = 5.0
"""Seconds after the last send: a message not seen by then is missed."""


class StreamReader:
    """One held ``GET /events``: the (time read, last_id) of each feed event naming ``peer``."""

    def __init__(self, host: str, port: int, token: str, peer: str) -> None:
        if host not in ("127.0.0.1", "localhost"):
            raise ValueError("benchmarks only talk to 127.0.0.1")
        self.host, self.port, self.token, self.peer = host, port, token, peer
        self.arrivals: list[tuple[float, int]] = []
        self.opened = asyncio.Event()  # the first feed event is in
        self.moved = asyncio.Event()  # set on each arrival
        self.heartbeats = 0

    async def hold(self) -> None:
        reader, writer = await asyncio.open_connection(self.host, self.port)
        try:
            writer.write(
                f"GET /events HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
                f"Authorization: Bearer {self.token}\r\n\r\n".encode()
            )
            head = await reader.readuntil(b"\r\n\r\n")
            if head[9:12] != b"200" or b"chunked" not in head.lower():
                raise RuntimeError(f"GET /events: {head[:200]!r}")
            pending = b""
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                if size == 0:
                    return  # the server ended the stream
                chunk = await reader.readexactly(size + 2)
                now = time.perf_counter()
                pending += chunk[:-2]
                while b"\n\n" in pending:
                    block, pending = pending.split(b"\n\n", 1)
                    self._event(block, now)
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()

    def _event(self, block: bytes, now: float) -> None:
        if block.startswith(b":"):
            self.heartbeats += 1
            return
        name, data = b"", b""
        for line in block.split(b"\n"):
            field, _, value = line.partition(b":")
            if field == b"event":
                name = value.strip()
            elif field == b"data":
                data = value.strip()
        if name != b"feed":
            return
        self.opened.set()
        for change in orjson.loads(data)["changed"]:
            if change["username"] == self.peer:
                self.arrivals.append((now, int(change["last_id"])))
                self.moved.set()

    def seen_by(self, message_id: int) -> float | None:
        """When the first event with ``last_id >= message_id`` was read."""
        for at, last_id in self.arrivals:
            if last_id >= message_id:
                return at
        return None


async def stream_chat(
    host: str,
    port: int,
    pair: tuple[str, str],
    tokens: tuple[str | None, str],
    count: int,
    gap: float,
) -> tuple[Watch, int]:
    """``pair[0]`` sends ``count`` messages ``gap`` apart to ``pair[1]``, who holds a stream.

    ``tokens``: the author's (None: open mode's anonymous send) and the reader's.
    Returns the watch (latency per message) and how many were never seen.
    """
    author, reader = pair
    stream = StreamReader(host, port, tokens[1], author)
    holding = asyncio.create_task(stream.hold())
    conn = Connection(host, port, tokens[0])
    sent: dict[int, tuple[str, float]] = {}
    watch = Watch()
    try:
        await asyncio.wait_for(stream.opened.wait(), 30)
        for k in range(count):
            await asyncio.sleep(gap)
            text = f"stream probe {k}"
            began = time.perf_counter()
            message_id = await api.send(conn, author, reader, text)
            sent[message_id] = (text, began)
            watch.sent[text] = began
        last = max(sent, default=0)
        deadline = time.perf_counter() + SEEN_WITHIN
        while stream.seen_by(last) is None and time.perf_counter() < deadline:
            stream.moved.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stream.moved.wait(), deadline - time.perf_counter())
            if holding.done():
                break
    finally:
        holding.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await holding
        await conn.close()
    for message_id, (text, _) in sent.items():
        at = stream.seen_by(message_id)
        if at is not None:
            watch.seen[text] = at
    return watch, count - len(watch.seen)
