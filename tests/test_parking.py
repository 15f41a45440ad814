"""A parked long-poll is finished by its query alone: one run of the app per request.

These drive the real ASGI front (``backend/server/front.py``) and the real Flask app
and services over ASGI in this process — the front as granian calls it — and count
the app's runs with a WSGI wrapper that only counts (nothing of ours is replaced).
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

import pytest

from backend.server.app import create_app
from backend.server.front import Front
from backend.services.wiring import build_services
from tests.support import settings_for

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class CountingApp:
    """The app, and how many times each path ran in it."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.runs: Counter[str] = Counter()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        self.runs[environ["PATH_INFO"]] += 1
        return self.app(environ, start_response)  # type: ignore[no-any-return]


class Harness:
    def __init__(self, data_dir: Path) -> None:
        self.services = build_services(settings_for(data_dir, watch_interval=0))
        app = create_app(services=self.services)
        self.counter = CountingApp(app.wsgi_app)
        app.wsgi_app = self.counter  # type: ignore[method-assign]
        self.front = Front(app, self.services)

    async def call(
        self, method: str, path: str, token: str | None = None, form: str = "", query: str = ""
    ) -> tuple[int, dict[str, str], Any]:
        headers = [(b"host", b"127.0.0.1")]
        if token:
            headers.append((b"authorization", f"Bearer {token}".encode()))
        if form:
            headers.append((b"content-type", b"application/x-www-form-urlencoded"))
        scope = {
            "type": "http",
            "method": method,
            "path": path,
            "raw_path": path.encode(),
            "query_string": query.encode(),
            "headers": headers,
            "client": ("127.0.0.1", 1),
            "server": ("127.0.0.1", 5000),
        }
        inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        await inbox.put({"type": "http.request", "body": form.encode(), "more_body": False})
        sent: list[dict[str, Any]] = []
        await self.front(scope, inbox.get, _append_to(sent))
        start, *bodies = sent
        headers_out = {k.decode(): v.decode() for k, v in start["headers"]}
        body = b"".join(part.get("body", b"") for part in bodies)
        return start["status"], headers_out, json.loads(body)

    async def token(self, name: str) -> str:
        status, _, reply = await self.call(
            "POST", "/register", form=f"username={name}&password=correct+horse"
        )
        assert status == 201
        token: str = reply["token"]
        return token

    async def until_held(self, count: int = 1) -> None:
        while self.services.notifier.waiting() < count:
            await asyncio.sleep(0.005)


def _append_to(sent: list[dict[str, Any]]) -> Any:
    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    return send


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    running = Harness(tmp_path / "data")
    yield running
    running.front.close()


async def test_a_woken_feed_wait_runs_the_app_once(harness: Harness) -> None:
    alice, bob = await harness.token("alice"), await harness.token("bob")
    _, _, first = await harness.call("GET", "/updates", alice)
    cursor = first["cursor"]
    harness.counter.runs.clear()
    waiting = asyncio.create_task(
        harness.call("GET", "/updates", alice, query=f"since={cursor}&wait=20")
    )
    await harness.until_held()
    status, _, _ = await harness.call("POST", "/send_message/alice", bob, "author=bob&message=hi")
    assert status == 200
    status, headers, reply = await asyncio.wait_for(waiting, 10)
    assert status == 200 and [c["username"] for c in reply["changed"]] == ["bob"]
    assert int(headers["content-length"]) == len(json.dumps(reply, separators=(",", ":"))) + 1
    assert harness.counter.runs["/updates"] == 1, "woken, only its query ran again"


async def test_a_woken_history_wait_runs_the_app_once_and_waits_on_past_other_changes(
    harness: Harness,
) -> None:
    """An edit moves the pair's key but is no new message for an ``after_id`` wait: it
    waits on (the query ran, the app did not); the next send answers it."""
    alice, bob = await harness.token("alice"), await harness.token("bob")
    pair = "user_one=alice&user_two=bob"
    await harness.call("POST", "/send_message/bob", alice, "author=alice&message=one")
    harness.counter.runs.clear()
    woken: list[float] = []
    harness.services.notifier.woken = woken.append  # told when a held wait runs again
    waiting = asyncio.create_task(
        harness.call("POST", "/get_message_history", bob, f"{pair}&after_id=1&wait=20")
    )
    await harness.until_held()
    status, _, _ = await harness.call("POST", "/edit_message", alice, f"{pair}&id=1&message=one%21")
    assert status == 200
    while not woken:  # a gate, not a yield: the wake has reached the held wait
        await asyncio.sleep(0.005)
    # held again after its query found nothing new - or answered, which it must not be
    while harness.services.notifier.waiting() < 1 and not waiting.done():
        await asyncio.sleep(0.005)
    assert not waiting.done(), "an edit answered a wait for new messages"
    await harness.call("POST", "/send_message/bob", alice, "author=alice&message=two")
    status, _, reply = await asyncio.wait_for(waiting, 10)
    assert status == 200 and [m["message"] for m in reply["history"]] == ["two"]
    assert harness.counter.runs["/get_message_history"] == 1


async def test_a_token_revoked_while_its_wait_is_held_gets_401_not_the_change(
    harness: Harness,
) -> None:
    alice = await harness.token("alice")
    _, _, first = await harness.call("GET", "/updates", alice)
    waiting = asyncio.create_task(
        harness.call("GET", "/updates", alice, query=f"since={first['cursor']}&wait=20")
    )
    await harness.until_held()
    await harness.call("POST", "/logout", alice)
    status, _, reply = await asyncio.wait_for(waiting, 10)
    assert status == 401 and reply["error"] == "unauthorized"
