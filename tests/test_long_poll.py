"""Long-poll (``wait``): wake-ups in-process and across processes, nothing lost, capped."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from tests.support import (
    LiveServer,
    Server,
    ServerProcess,
    bearer,
    free_port,
    held_waits_become,
    http,
    register,
    until,
)


def history(
    url: str, token: str | None, after_id: int, wait: float, **extra: Any
) -> httpx.Response:
    return http.post(
        f"{url}/get_message_history",
        data={"user_one": "alice", "user_two": "bob", "after_id": after_id, "wait": wait, **extra},
        headers=bearer(token) if token else {},
        timeout=60,
    )


_client = httpx.Client(timeout=30)  # shared: a new client per call costs more than a send


def send(url: str, token: str | None, text: str, client_id: str | None = None) -> int:
    data = {"author": "bob", "message": text}
    if client_id:
        data["client_id"] = client_id
    reply = _client.post(
        f"{url}/send_message/alice", data=data, headers=bearer(token) if token else {}
    )
    assert reply.status_code == 200, reply.text
    sent: int = reply.json()["id"]
    return sent


def send_when_held(server: Server, fn: Callable[[], object]) -> threading.Thread:
    """``fn`` in a thread once ``server`` holds a wait (its notifier says so): the send
    then wakes a held request, never one a plain query would have found anyway."""
    assert server.services is not None
    notifier = server.services.notifier

    def run() -> None:
        until(lambda: notifier.waiting() >= 1, "the server to hold the wait")
        fn()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_a_waiter_wakes_on_a_send_in_the_same_process(open_server: LiveServer) -> None:
    url = open_server.url
    sender = send_when_held(open_server, lambda: send(url, None, "wake up"))
    started = time.monotonic()
    reply = history(url, None, after_id=0, wait=20)
    elapsed = time.monotonic() - started
    sender.join()
    assert [m["message"] for m in reply.json()["history"]] == ["wake up"]
    assert elapsed < 20, "answered because of the send, not the end of the wait"


def test_the_feed_waiter_wakes_on_a_send(server: LiveServer) -> None:
    alice, bob = register(server.url, "alice"), register(server.url, "bob")
    cursor = http.get(f"{server.url}/updates", headers=bearer(alice)).json()["cursor"]
    sender = send_when_held(server, lambda: send(server.url, bob, "psst"))
    reply = http.get(
        f"{server.url}/updates",
        params={"since": cursor, "wait": 20},
        headers=bearer(alice),
        timeout=40,
    )
    sender.join()
    assert [(c["username"], c["unread"]) for c in reply.json()["changed"]] == [("bob", 1)]


def test_waiters_wake_on_a_send_through_another_worker_process(
    server_process: Callable[..., ServerProcess], live_server: Callable[..., LiveServer]
) -> None:
    port = free_port()
    first = server_process("--metrics-port", str(port))
    # A second *server* on the folder is refused (its lock); the other process here is
    # this test's own, serving the same files as a worker of a --workers N server would.
    second = live_server(data_dir=first.data_dir)
    alice, bob = register(first.url, "alice"), register(first.url, "bob")
    cursor = http.get(f"{first.url}/updates", headers=bearer(alice)).json()["cursor"]
    with ThreadPoolExecutor(2) as pool:
        waiting_history = pool.submit(history, first.url, alice, 0, 20)
        waiting_feed = pool.submit(
            httpx.get,
            f"{first.url}/updates",
            params={"since": cursor, "wait": 20},
            headers=bearer(alice),
            timeout=40,
        )
        held_waits_become(f"http://127.0.0.1:{port}", 2)  # both held: a gate, not a sleep
        started = time.monotonic()
        send(second.url, bob, "from the other process")
        messages = waiting_history.result().json()["history"]
        changed = waiting_feed.result().json()["changed"]
        elapsed = time.monotonic() - started
    assert [m["message"] for m in messages] == ["from the other process"]
    assert [c["username"] for c in changed] == ["bob"]
    assert elapsed < 20


def test_a_thousand_interleaved_sends_and_waits_lose_and_duplicate_nothing(
    open_server: LiveServer,
) -> None:
    url = open_server.url
    total = 1000
    received: list[dict[str, Any]] = []

    def receive() -> None:
        last = 0
        with httpx.Client(timeout=60) as client:
            while len(received) < total:
                reply = client.post(
                    f"{url}/get_message_history",
                    data={"user_one": "alice", "user_two": "bob", "after_id": last, "wait": 10},
                )
                batch = reply.json()["history"]
                received.extend(batch)
                if batch:
                    last = batch[-1]["id"]

    receiver = threading.Thread(target=receive)
    receiver.start()
    with ThreadPoolExecutor(4) as pool:
        ids = list(pool.map(lambda n: send(url, None, f"n{n}", client_id=f"c{n}"), range(total)))
    receiver.join(timeout=120)
    assert not receiver.is_alive()
    assert [m["id"] for m in received] == sorted(ids) == list(range(1, total + 1))
    assert sorted(m["message"] for m in received) == sorted(f"n{n}" for n in range(total))


def test_wait_is_capped_and_wait_zero_answers_at_once(
    live_server: Callable[..., LiveServer],
) -> None:
    server = live_server(open_mode=True, max_wait=1.0)
    started = time.monotonic()
    reply = history(server.url, None, after_id=0, wait=3600)
    assert reply.status_code == 200 and reply.json()["history"] == []
    assert time.monotonic() - started < 30
    for wait in (0, "0", ""):
        assert history(server.url, None, after_id=0, wait=wait).json()["history"] == []  # type: ignore[arg-type]


def test_a_waiter_that_disconnects_frees_its_slot(live_server: Callable[..., LiveServer]) -> None:
    server = live_server(open_mode=True, max_wait=1.0, max_waiters=2)
    notifier = server.services.notifier
    for _ in range(2):
        # the client hangs up while the server holds the request
        with contextlib.suppress(httpx.TimeoutException):
            http.post(
                f"{server.url}/get_message_history",
                data={"user_one": "alice", "user_two": "bob", "after_id": 0, "wait": 1},
                timeout=0.2,
            )
    deadline = time.monotonic() + 10
    while notifier.waiting() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert notifier.waiting() == 0
    # both slots are free again: a new waiter is held, and woken by a send
    sender = send_when_held(server, lambda: send(server.url, None, "slot"))
    reply = history(server.url, None, after_id=0, wait=1)
    sender.join()
    assert [m["message"] for m in reply.json()["history"]] == ["slot"]


def test_past_the_waiter_limit_a_wait_answers_at_once(
    live_server: Callable[..., LiveServer],
) -> None:
    server = live_server(open_mode=True, max_wait=5.0, max_waiters=1)
    with ThreadPoolExecutor(1) as pool:
        held = pool.submit(history, server.url, None, 0, 5)
        deadline = time.monotonic() + 5
        while server.services.notifier.waiting() == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        started = time.monotonic()
        reply = history(server.url, None, after_id=0, wait=5)
        quick = time.monotonic() - started
        send(server.url, None, "release")
        assert [m["message"] for m in held.result().json()["history"]] == ["release"]
    assert reply.json()["history"] == []
    assert quick < 4, "no slot: answered without holding"
