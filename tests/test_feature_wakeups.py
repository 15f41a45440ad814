"""Held requests wake for the conversation features, under the real ``pairchat-server``.

Edits, deletions, read receipts and typing signals must wake the long-polls they
concern — ``after_rev`` waits on the pair, ``/updates`` waits of both users — where
the production server parks them (granian's ASGI front, no thread), and from
another worker process on the same data folder (the accounts file's watcher).
Each assertion is on what the held request answers: a wait that ran out would
answer nothing new. Each change is made only once the server reports the wait held
(``pairchat_held_waits`` on its metrics port), so a slow machine cannot turn a test of a
wake-up into a test of a plain query.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import httpx

from tests.people import Person
from tests.support import (
    LiveServer,
    ServerProcess,
    bearer,
    free_port,
    held_waits_become,
    http,
)

WAIT = 30


class Holds:
    """Long-polls held in threads, each returned once the server reports it held."""

    def __init__(self, pool: ThreadPoolExecutor, metrics: str) -> None:
        self.pool = pool
        self.metrics = metrics
        self.futures: list[Future[Any]] = []

    def __call__(self, person: Person, path: str, **fields: Any) -> Future[Any]:
        """``person``'s long-poll; its reply's JSON when it ends."""
        # the ones held before are answered by now (their results were read): the
        # server's count must say so before it can say this one is held
        held = sum(1 for future in self.futures if not future.done())
        held_waits_become(self.metrics, held)
        future = self.pool.submit(_wait, person, path, fields)
        self.futures.append(future)
        held_waits_become(self.metrics, held + 1)
        return future


def _wait(person: Person, path: str, fields: dict[str, Any]) -> Any:
    url = person.server.url + path
    headers = bearer(person.token)
    if path == "/updates":
        reply = httpx.get(url, params={**fields, "wait": WAIT}, headers=headers, timeout=90)
    else:
        reply = httpx.post(url, data={**fields, "wait": WAIT}, headers=headers, timeout=90)
    assert reply.status_code == 200, reply.text
    return reply.json()


def with_metrics(start: Callable[..., ServerProcess]) -> tuple[ServerProcess, str]:
    """A ``pairchat-server`` with a metrics port: the URL its held waits are read from."""
    port = free_port()
    return start("--metrics-port", str(port)), f"http://127.0.0.1:{port}"


def friends(server: Any) -> dict[str, Person]:
    people = {name: Person(server, name) for name in ("alice", "bob")}
    people["alice"].add("bob")
    people["bob"].add("alice")
    return people


def test_waits_wake_for_edits_deletes_receipts_and_typing(
    server_process: Callable[..., ServerProcess],
) -> None:
    server, metrics = with_metrics(server_process)
    p = friends(server)
    first = p["alice"].send("bob", "see you at 5")
    with ThreadPoolExecutor(2) as pool:
        hold = Holds(pool, metrics)
        changes = hold(p["bob"], "/get_message_history", **p["bob"].pair("alice"),
                       after_rev=first["rev"])  # fmt: skip
        feed = hold(p["bob"], "/updates", since=p["bob"].cursor())
        edited = p["alice"].edit("bob", first["id"], "see you at 6")
        assert [m["message"] for m in changes.result()["history"]] == ["see you at 6"]
        assert [c["rev"] for c in feed.result()["changed"]] == [edited["rev"]]

        feed = hold(p["alice"], "/updates", since=p["alice"].cursor())
        p["alice"].delete("bob", first["id"])  # the author's own feed wakes too
        assert [c["username"] for c in feed.result()["changed"]] == ["bob"]

        second = p["alice"].send("bob", "or at 7")
        feed = hold(p["alice"], "/updates", since=p["alice"].cursor())
        p["bob"].ok("/mark_read", username="alice", last_read_id=second["id"])
        assert [c["peer_read_up_to"] for c in feed.result()["changed"]] == [second["id"]]

        feed = hold(p["alice"], "/updates", since=p["alice"].cursor())
        p["bob"].ok("/typing", username="alice")
        assert [(c["username"], c["typing"]) for c in feed.result()["changed"]] == [("bob", True)]


def test_another_worker_process_wakes_them_too(
    server_process: Callable[..., ServerProcess], live_server: Callable[..., LiveServer]
) -> None:
    first, metrics = with_metrics(server_process)
    # A second *server* on the folder is refused (its lock); this process's own app on the
    # same files plays a second worker of a --workers N server, as in test_long_poll.py.
    second = live_server(data_dir=first.data_dir)
    here = friends(first)
    there = {name: Person(second, name, person.token) for name, person in here.items()}
    sent = here["alice"].send("bob", "hello")
    with ThreadPoolExecutor(2) as pool:
        hold = Holds(pool, metrics)
        changes = hold(here["bob"], "/get_message_history", **here["bob"].pair("alice"),
                       after_rev=sent["rev"])  # fmt: skip
        feed = hold(here["bob"], "/updates", since=here["bob"].cursor())
        there["alice"].edit("bob", sent["id"], "hello, edited elsewhere")
        assert [m["message"] for m in changes.result()["history"]] == ["hello, edited elsewhere"]
        assert [c["username"] for c in feed.result()["changed"]] == ["alice"]

        feed = hold(here["bob"], "/updates", since=here["bob"].cursor())
        there["alice"].ok("/typing", username="bob")
        assert [(c["username"], c["typing"]) for c in feed.result()["changed"]] == [("alice", True)]
    # the worker that did not take the signal shows it as well: it lives in the accounts file
    assert here["bob"].friend("alice")["typing"] is True
    assert http.get(f"{first.url}/healthz").status_code == 200
