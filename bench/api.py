"""The few API calls the benchmarks need for setup, over :class:`bench.client.Connection`."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from bench.client import Connection

PASSWORD = "bench-password-1"


async def create_pair(conn: Connection, one: str, two: str) -> None:
    await conn.post("/create_conversation_db", {"user_one": one, "user_two": two})


async def register(conn: Connection, username: str) -> str:
    reply = await conn.post("/register", {"username": username, "password": PASSWORD}, expect=201)
    token: str = reply.json()["token"]
    return token


async def register_many(
    host: str, port: int, names: Sequence[str], concurrency: int = 8
) -> dict[str, str]:
    """Register ``names`` over ``concurrency`` connections; returns name -> token."""
    tokens: dict[str, str] = {}
    queue = list(reversed(names))

    async def worker() -> None:
        conn = Connection(host, port)
        try:
            while queue:
                name = queue.pop()
                tokens[name] = await register(conn, name)
        finally:
            await conn.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return tokens


async def send(conn: Connection, author: str, to: str, text: str) -> int:
    reply = await conn.post(f"/send_message/{to}", {"author": author, "message": text})
    message_id: int = reply.json()["id"]
    return message_id
