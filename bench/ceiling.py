"""The ceiling of (g): the least an asyncio server can do to hold the same long-polls.

``python -m bench.ceiling PORT`` serves, on 127.0.0.1 with aiohttp on uvloop,
just enough of pairchat's API for the harness: the pair long-poll
(``POST /get_message_history`` with ``after_id`` and ``wait``), the feed
long-poll (``GET /updates`` with ``since`` and ``wait``; the token is not
checked), the feed stream (``GET /events``, below), ``POST /send_message/<to>``
and ``GET /healthz``. Messages live in a dict, a waiter is an ``asyncio.Event``
per key: no storage, no auth, no limits. What pairchat costs beyond this,
holding the same clients in the same run, is the price of everything it does
and this does not.

``GET /events`` is pairchat's stream with nothing around it: ``retry: 2000``
and a first ``feed`` event at once, then a ``feed`` event whenever the key
(``Authorization``, as for ``/updates``) is woken, and a ``: keep-alive``
comment after ``PAIRCHAT_STREAM_HEARTBEAT`` (25) seconds without one. A held
stream is a coroutine awaiting one future, registered under its key; its
heartbeat is due on a shared one-second tick (one timer a second for all the
streams, as pairchat's ``_Ticks``), so both servers send the same heartbeats at
the same moments.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import sys
from collections import defaultdict
from typing import Any

import orjson
import uvloop
from aiohttp import web

messages: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
feed: dict[str, dict[str, tuple[int, int]]] = defaultdict(dict)
"""user -> peer -> (seq of its last change, the pair's last message id)"""
events: dict[str, asyncio.Event] = {}
streams: dict[str, set[asyncio.Future[bool]]] = defaultdict(set)
"""key -> the futures its held streams await (True: woken, False: heartbeat due)"""
seq = 0
HEARTBEAT = float(os.environ.get("PAIRCHAT_STREAM_HEARTBEAT", "25"))
TICK = 1.0
SSE_HEADERS = {
    "Content-Type": "text/event-stream; charset=utf-8",
    "Cache-Control": "no-store",
    "X-Accel-Buffering": "no",
}
KEEP_ALIVE = b": keep-alive\n\n"


async def wait_for(key: str, wait: float) -> None:
    """Until ``key`` is woken or ``wait`` seconds pass."""
    event = events.setdefault(key, asyncio.Event())
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), min(wait, 60.0))


def wake(key: str) -> None:
    event = events.pop(key, None)
    if event is not None:
        event.set()
    for future in streams.get(key, ()):
        if not future.done():
            future.set_result(True)


class Ticks:
    """Heartbeats due on one shared timer per second (pairchat's ``_Ticks``)."""

    def __init__(self) -> None:
        self.due: dict[int, list[asyncio.Future[bool]]] = {}

    def add(
        self, loop: asyncio.AbstractEventLoop, timeout: float, future: asyncio.Future[bool]
    ) -> None:
        tick = math.floor((loop.time() + timeout) / TICK)
        due = self.due.get(tick)
        if due is None:
            due = self.due[tick] = []
            loop.call_at(tick * TICK, self.fire, tick)
        due.append(future)

    def fire(self, tick: int) -> None:
        for future in self.due.pop(tick, ()):
            if not future.done():
                future.set_result(False)


ticks = Ticks()


def pair_of(one: str, two: str) -> tuple[str, str]:
    return (one, two) if one < two else (two, one)


async def history(request: web.Request) -> web.Response:
    form = await request.post()
    pair = pair_of(str(form["user_one"]), str(form["user_two"]))
    after = int(str(form.get("after_id", 0)))
    newer = [m for m in messages[pair] if m["id"] > after]
    if not newer:
        await wait_for(f"pair:{pair}", float(str(form.get("wait", 0))))
        newer = [m for m in messages[pair] if m["id"] > after]
    return web.json_response({"history": newer, "has_more": False})


def changes(user: str, since: int) -> list[dict[str, Any]]:
    return [
        {"username": peer, "last_id": last_id}
        for peer, (at, last_id) in feed[user].items()
        if at > since
    ]


async def updates(request: web.Request) -> web.Response:
    user = request.headers.get("Authorization", "anonymous")
    since = int(request.query.get("since", 0))
    changed = changes(user, since)
    if not changed and "since" in request.query:
        await wait_for(f"user:{user}", float(request.query.get("wait", 0)))
        changed = changes(user, since)
    return web.json_response({"cursor": str(seq), "changed": changed})


def feed_event(user: str, since: int) -> tuple[bytes, int]:
    """A ``feed`` event of what changed after ``since``, and its cursor."""
    cursor = seq
    data = orjson.dumps({"cursor": str(cursor), "changed": changes(user, since)})
    return b"id: %d\nevent: feed\ndata: %s\n\n" % (cursor, data), cursor


async def stream(request: web.Request) -> web.StreamResponse:
    user = request.headers.get("Authorization", "anonymous")
    key = f"user:{user}"
    resume = request.headers.get("Last-Event-ID") or request.query.get("since") or "0"
    response = web.StreamResponse(headers=SSE_HEADERS)
    await response.prepare(request)
    first, cursor = feed_event(user, int(resume))
    loop = asyncio.get_running_loop()
    held = streams[key]
    future: asyncio.Future[bool] | None = None
    try:
        await response.write(b"retry: 2000\n\n" + first)
        while True:
            future = loop.create_future()
            held.add(future)
            ticks.add(loop, HEARTBEAT, future)
            woken = await future
            held.discard(future)
            if woken:
                event, cursor = feed_event(user, cursor)
                await response.write(event)
            else:
                await response.write(KEEP_ALIVE)
    except (ConnectionError, RuntimeError):  # the client went away
        pass
    finally:
        if future is not None:
            held.discard(future)
        if not held:
            streams.pop(key, None)
    return response


async def send(request: web.Request) -> web.Response:
    global seq
    form = await request.post()
    author, to = str(form["author"]), request.match_info["to"]
    pair = pair_of(author, to)
    message_id = len(messages[pair]) + 1
    stored = {"id": message_id, "author": author, "message": str(form["message"])}
    messages[pair].append(stored)
    seq += 1
    for user, peer in ((to, author), (author, to)):  # a token here is its user's name
        feed[f"Bearer {user}"][peer] = (seq, message_id)
        wake(f"user:Bearer {user}")
    wake(f"pair:{pair}")
    return web.json_response({"success": True, "id": stored["id"]})


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def main(argv: list[str]) -> None:
    app = web.Application()
    app.add_routes(
        [
            web.post("/get_message_history", history),
            web.get("/updates", updates),
            web.get("/events", stream),
            web.post("/send_message/{to}", send),
            web.get("/healthz", healthz),
        ]
    )
    uvloop.install()
    web.run_app(app, host="127.0.0.1", port=int(argv[0]), access_log=None, print=None)


if __name__ == "__main__":
    main(sys.argv[1:])
