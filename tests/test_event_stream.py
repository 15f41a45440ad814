"""``GET /events`` under the real server: delivery, resume, revocation, caps, no thread held.

Every test here talks to ``pairchat-server`` in a child process (granian and the
ASGI front, where streams are held on the event loop) over real HTTP.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.sse import Stream, open_stream
from tests.support import LiveServer, ServerProcess, bearer, http, register

pytestmark = pytest.mark.live  # pairchat-server processes, over real HTTP
HEARTBEAT = "0.3"
_names = itertools.count()


def fresh(prefix: str) -> str:
    return f"{prefix}{next(_names)}"


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server for the tests that only need their own accounts."""
    env = {"PAIRCHAT_STREAM_HEARTBEAT": HEARTBEAT, "PAIRCHAT_MAX_WAITS_PER_USER": "2"}
    server = ServerProcess(tmp_path_factory.mktemp("events") / "data", env=env).start()
    yield server
    server.stop()


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=httpx.Timeout(10.0)) as streaming:
        yield streaming


def send(url: str, token: str, author: str, to: str, text: str) -> int:
    reply = http.post(
        f"{url}/send_message/{to}", data={"author": author, "message": text}, headers=bearer(token)
    )
    assert reply.status_code == 200, reply.text
    sent: int = reply.json()["id"]
    return sent


def updates(url: str, token: str, since: str | None = None) -> dict[str, object]:
    params = {"since": since} if since is not None else {}
    reply = http.get(f"{url}/updates", params=params, headers=bearer(token))
    assert reply.status_code == 200, reply.text
    found: dict[str, object] = reply.json()
    return found


def pair(url: str) -> tuple[str, str, str, str]:
    a, b = fresh("ann"), fresh("ben")
    return a, register(url, a), b, register(url, b)


def test_a_stream_opens_with_the_whole_feed_then_sends_each_change(
    shared: ServerProcess, client: httpx.Client
) -> None:
    a, a_token, b, b_token = pair(shared.url)
    send(shared.url, b_token, b, a, "before the stream")
    with open_stream(client, shared.url, a_token) as stream:
        assert stream.response.headers["content-type"] == "text/event-stream; charset=utf-8"
        assert stream.response.headers["cache-control"] == "no-store"
        first = stream.next()
        assert first.kind == "feed" and first.retry == 2000
        assert first.data == updates(shared.url, a_token), "the opening is /updates without since"
        assert first.id == first.data["cursor"]
        send(shared.url, b_token, b, a, "live")
        change = stream.next()
        assert change.kind == "feed" and change.id == change.data["cursor"]
        assert change.data == updates(shared.url, a_token, since=first.id)
        [contact] = change.data["changed"]
        assert contact["username"] == b and contact["last_id"] == 2


def test_an_idle_stream_gets_keep_alive_comments(
    shared: ServerProcess, client: httpx.Client
) -> None:
    _, a_token, _, _ = pair(shared.url)
    with open_stream(client, shared.url, a_token) as stream:
        stream.next()
        assert stream.next(comments=True).data == "keep-alive"
        assert stream.next(comments=True).data == "keep-alive"


def test_idle_streams_hold_no_thread(shared: ServerProcess, client: httpx.Client) -> None:
    """Fifty open streams: the worker runs as many threads as before they opened."""
    [worker] = shared.worker_pids()
    tokens = [register(shared.url, fresh("idle")) for _ in range(50)]
    with open_stream(client, shared.url, tokens[0]) as stream:  # the pool's threads start
        stream.next()
    before = len(os.listdir(f"/proc/{worker}/task"))
    with contextlib.ExitStack() as held:
        streams = [held.enter_context(open_stream(client, shared.url, t)) for t in tokens]
        for stream in streams:
            assert stream.next().kind == "feed"
        for stream in streams:  # every stream has been idle through a heartbeat
            assert stream.next(comments=True).kind == "comment"
        assert len(os.listdir(f"/proc/{worker}/task")) <= before


@pytest.mark.parametrize("how", ["logout", "logout_all", "delete_account"])
def test_revoking_the_token_ends_the_stream(
    shared: ServerProcess, client: httpx.Client, how: str
) -> None:
    _, a_token, _, _ = pair(shared.url)
    with open_stream(client, shared.url, a_token) as stream:
        stream.next()
        data = {"password": "correct horse"} if how == "delete_account" else {}
        reply = http.post(f"{shared.url}/{how}", data=data, headers=bearer(a_token))
        assert reply.status_code == 200, reply.text
        started = time.monotonic()
        end = stream.next()
        assert end.kind == "end" and end.data["reason"] == "unauthorized"
        assert time.monotonic() - started < 5, "ended by the revocation, not by a timeout"
        with pytest.raises(EOFError):
            stream.next(comments=True)


def test_a_stream_past_the_per_user_cap_ends_the_oldest(
    shared: ServerProcess, client: httpx.Client
) -> None:
    """The cap is 2 here: a third stream of the same user ends the first, nobody else's."""
    _, a_token, _, other_token = pair(shared.url)
    with contextlib.ExitStack() as held:
        other = held.enter_context(open_stream(client, shared.url, other_token))
        other.next()
        mine: list[Stream] = []
        for _ in range(3):
            mine.append(held.enter_context(open_stream(client, shared.url, a_token)))
            mine[-1].next()
        end = mine[0].next()
        assert end.kind == "end" and end.data["reason"] == "replaced"
        assert end.retry == 60_000, "the replaced client is told not to fight back"
        for stream in (other, mine[1], mine[2]):  # still open: each gets heartbeats
            assert stream.next(comments=True).kind == "comment"


def test_resume_by_last_event_id_or_since_loses_and_repeats_nothing(
    shared: ServerProcess, client: httpx.Client
) -> None:
    a, a_token, b, b_token = pair(shared.url)
    with open_stream(client, shared.url, a_token) as stream:
        seen = stream.next().id
        send(shared.url, b_token, b, a, "one")
        seen = stream.next().id
    send(shared.url, b_token, b, a, "two, while away")
    for resume in ({"last_event_id": seen}, {"since": seen}):
        with open_stream(client, shared.url, a_token, **resume) as stream:  # type: ignore[arg-type]
            first = stream.next()
            [contact] = first.data["changed"]
            assert contact["last_id"] == 2, "what came while away"
            assert int(first.id) > int(seen)
    with open_stream(client, shared.url, a_token, last_event_id=first.id) as stream:
        assert stream.next().data["changed"] == [], "nothing again"
    bad = http.get(f"{shared.url}/events", headers={**bearer(a_token), "Last-Event-ID": "x1"})
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_field"


def test_resume_across_a_restart(
    server_process: Callable[..., ServerProcess], client: httpx.Client
) -> None:
    server = server_process(env={"PAIRCHAT_STREAM_HEARTBEAT": HEARTBEAT})
    a, a_token, b, b_token = pair(server.url)
    with open_stream(client, server.url, a_token) as stream:
        stream.next()
        send(server.url, b_token, b, a, "one")
        last = stream.next()
        server.proc.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
        end = stream.next()
        assert end.kind == "end" and end.data["reason"] == "shutdown"
    server.stop()
    restarted = server_process(
        data_dir=server.data_dir, port=server.port, env={"PAIRCHAT_STREAM_HEARTBEAT": HEARTBEAT}
    )
    send(restarted.url, b_token, b, a, "two")
    with open_stream(client, restarted.url, a_token, last_event_id=last.id) as stream:
        [contact] = stream.next().data["changed"]
        assert contact["last_id"] == 2
        send(restarted.url, b_token, b, a, "three")
        [contact] = stream.next().data["changed"]
        assert contact["last_id"] == 3


def test_a_full_server_says_when_to_come_back(
    server_process: Callable[..., ServerProcess], client: httpx.Client, tmp_path: Path
) -> None:
    """One slot: a stream holds it; the next stream gets 503 and a long-poll its answer at
    once, both with Retry-After (never an invitation to ask again at once)."""
    server = server_process("--max-waiters", "1", env={"PAIRCHAT_STREAM_HEARTBEAT": HEARTBEAT})
    _, a_token, _, b_token = pair(server.url)
    with open_stream(client, server.url, a_token) as stream:
        stream.next()
        refused = http.get(f"{server.url}/events", headers=bearer(b_token))
        assert refused.status_code == 503 and refused.json()["error"] == "unavailable"
        assert 10 <= int(refused.headers["retry-after"]) <= 30
        cursor = updates(server.url, b_token)["cursor"]
        started = time.monotonic()
        early = http.get(
            f"{server.url}/updates", params={"since": cursor, "wait": 20}, headers=bearer(b_token)
        )
        assert early.status_code == 200 and time.monotonic() - started < 10
        assert 10 <= int(early.headers["retry-after"]) <= 30


def test_a_revocation_in_another_worker_process_ends_the_stream(
    server_process: Callable[..., ServerProcess], client: httpx.Client
) -> None:
    """Two workers: a sign-out served by either ends the stream held by either (the
    revocation moves the accounts file's epoch, which every worker's watcher notices)."""
    server = server_process("--workers", "2", env={"PAIRCHAT_STREAM_HEARTBEAT": HEARTBEAT})
    tokens = [register(server.url, fresh("two")) for _ in range(6)]
    with contextlib.ExitStack() as held:
        streams = [held.enter_context(open_stream(client, server.url, t)) for t in tokens]
        for stream in streams:
            stream.next()
        for token, stream in zip(tokens, streams, strict=True):
            assert http.post(f"{server.url}/logout", headers=bearer(token)).status_code == 200
            end = stream.next()
            assert end.kind == "end" and end.data["reason"] == "unauthorized"


@pytest.mark.parametrize("where", ["granian", "dev"])
def test_with_a_per_user_cap_of_one_a_newer_stream_replaces_the_older(
    where: str,
    server_process: Callable[..., ServerProcess],
    live_server: Callable[..., LiveServer],
    client: httpx.Client,
) -> None:
    """Under the production front and under the development server alike (before: a 500
    from the notifier at a cap of 1; under --dev the released stream waited again and
    two streams took the slot from each other thousands of times a second)."""
    if where == "granian":
        env = {"PAIRCHAT_STREAM_HEARTBEAT": HEARTBEAT, "PAIRCHAT_MAX_WAITS_PER_USER": "1"}
        url = server_process(env=env).url
    else:
        url = live_server(stream_heartbeat=float(HEARTBEAT), max_waits_per_user=1).url
    _, token, _, _ = pair(url)
    with open_stream(client, url, token) as older:
        older.next()
        with open_stream(client, url, token) as newer:
            assert newer.next().kind == "feed"
            end = older.next()
            assert end.kind == "end" and end.data["reason"] == "replaced"
            assert newer.next(comments=True).kind == "comment"
            cursor = updates(url, token)["cursor"]
            waited = http.get(
                f"{url}/updates", params={"since": cursor, "wait": 0.2}, headers=bearer(token)
            )
            assert waited.status_code == 200, "a long-poll past the cap of 1: no 500"
