"""The ceiling of (g): the least an asyncio server can do to hold the same long-polls.

``python -m bench.ceiling PORT`` serves, on 127.0.0.1 with aiohttp on uvloop,
just enough of pairchat's API for the harness: the pair long-poll
(``POST /get_message_history`` with ``after_id`` and ``wait``), the feed
long-poll (``GET /updates`` with ``since`` and ``wait``; the token is not
checked), ``POST /send_message/<to>`` and ``GET /healthz``. Messages live in a
dict, a waiter is an ``asyncio.Event`` per key: no storage, no auth, no limits.
What pairchat costs beyond this, holding the same clients in the same run, is
the price of everything it does and this does not.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections import defaultdict
from typing import Any

import uvloop
from aiohttp import web

messages: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
feed: dict[str, dict[str, int]] = defaultdict(dict)  # user -> peer -> seq of its last change
events: dict[str, asyncio.Event] = {}
seq = 0


async def wait_for(key: str, wait: float) -> None:
    """Until ``key`` is woken or ``wait`` seconds pass."""
    event = events.setdefault(key, asyncio.Event())
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), min(wait, 60.0))


def wake(key: str) -> None:
    event = events.pop(key, None)
    if event is not None:
        event.set()


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


async def updates(request: web.Request) -> web.Response:
    user = request.headers.get("Authorization", "anonymous")
    since = int(request.query.get("since", 0))
    changed = [peer for peer, at in feed[user].items() if at > since]
    if not changed and "since" in request.query:
        await wait_for(f"user:{user}", float(request.query.get("wait", 0)))
        changed = [peer for peer, at in feed[user].items() if at > since]
    return web.json_response({"cursor": str(seq), "changed": [{"username": p} for p in changed]})


async def send(request: web.Request) -> web.Response:
    global seq
    form = await request.post()
    author, to = str(form["author"]), request.match_info["to"]
    pair = pair_of(author, to)
    stored = {"id": len(messages[pair]) + 1, "author": author, "message": str(form["message"])}
    messages[pair].append(stored)
    seq += 1
    for user, peer in ((to, author), (author, to)):  # a token here is its user's name
        feed[f"Bearer {user}"][peer] = seq
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
            web.post("/send_message/{to}", send),
            web.get("/healthz", healthz),
        ]
    )
    uvloop.install()
    web.run_app(app, host="127.0.0.1", port=int(argv[0]), access_log=None, print=None)


if __name__ == "__main__":
    main(sys.argv[1:])
