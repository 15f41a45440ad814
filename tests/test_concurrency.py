"""Concurrent sends through the real server: nothing lost, nothing doubled, ids increasing."""

from __future__ import annotations

import sqlite3
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx

from tests.support import LiveServer, http

THREADS = 8
PER_THREAD = 200


def _send_many(url: str, author: str, recipient: str, worker: int) -> list[tuple[int, int]]:
    """(status, id) of each send, in order."""
    results = []
    with httpx.Client(base_url=url, timeout=30) as client:
        for n in range(PER_THREAD):
            reply = client.post(
                f"/send_message/{recipient}", data={"author": author, "message": f"{worker}:{n}"}
            )
            results.append((reply.status_code, reply.json().get("id", -1)))
    return results


def _check_pair(server: LiveServer, a: str, b: str, expected: Counter[str]) -> None:
    reply = http.post(
        f"{server.url}/get_message_history", data={"user_one": a, "user_two": b}, timeout=30
    )
    history = reply.json()["history"]
    ids = [m["id"] for m in history]
    assert ids == sorted(set(ids)), "ids strictly increasing, no repeats"
    assert Counter(m["message"] for m in history) == expected


def test_eight_threads_to_one_pair(open_server: LiveServer) -> None:
    with ThreadPoolExecutor(THREADS) as pool:
        futures = [
            pool.submit(
                _send_many,
                open_server.url,
                "alice" if w % 2 else "bob",
                "bob" if w % 2 else "alice",
                w,
            )
            for w in range(THREADS)
        ]
        results = [f.result() for f in futures]
    for per_worker in results:
        assert all(status == 200 for status, _ in per_worker)
        worker_ids = [i for _, i in per_worker]
        assert worker_ids == sorted(worker_ids), "each worker sees its ids increase"
    expected = Counter(f"{w}:{n}" for w in range(THREADS) for n in range(PER_THREAD))
    _check_pair(open_server, "alice", "bob", expected)
    conn = sqlite3.connect(open_server.data_dir / "alice_bob.db")
    assert conn.execute("SELECT count(*) FROM conversation").fetchone()[0] == THREADS * PER_THREAD
    conn.close()


def test_eight_threads_to_eight_pairs(open_server: LiveServer) -> None:
    with ThreadPoolExecutor(THREADS) as pool:
        futures = [
            pool.submit(_send_many, open_server.url, f"u{w}", f"v{w}", w) for w in range(THREADS)
        ]
        results = [f.result() for f in futures]
    for w, per_worker in enumerate(results):
        assert all(status == 200 for status, _ in per_worker)
        assert [i for _, i in per_worker] == list(range(1, PER_THREAD + 1))
        _check_pair(open_server, f"u{w}", f"v{w}", Counter(f"{w}:{n}" for n in range(PER_THREAD)))


def test_same_client_id_twice_stores_one_row(open_server: LiveServer) -> None:
    data = {"author": "alice", "message": "once", "client_id": "abc-123"}
    first = http.post(f"{open_server.url}/send_message/bob", data=data).json()
    second = http.post(f"{open_server.url}/send_message/bob", data=data).json()
    assert first["id"] == second["id"]
    assert (first["duplicate"], second["duplicate"]) == (False, True)
    history = http.post(
        f"{open_server.url}/get_message_history", data={"user_one": "alice", "user_two": "bob"}
    )
    assert [m["message"] for m in history.json()["history"]] == ["once"]


def test_same_client_id_concurrently_stores_one_row(open_server: LiveServer) -> None:
    barrier = threading.Barrier(THREADS)

    def send(_: int) -> int:
        barrier.wait()
        data = {"author": "alice", "message": "race", "client_id": "same-key"}
        reply = http.post(f"{open_server.url}/send_message/bob", data=data, timeout=30)
        assert reply.status_code == 200
        sent_id: int = reply.json()["id"]
        return sent_id

    with ThreadPoolExecutor(THREADS) as pool:
        ids = list(pool.map(send, range(THREADS)))
    assert len(set(ids)) == 1
    history = http.post(
        f"{open_server.url}/get_message_history", data={"user_one": "alice", "user_two": "bob"}
    )
    assert len(history.json()["history"]) == 1


def test_client_id_reused_for_other_text_is_a_conflict(open_server: LiveServer) -> None:
    url = f"{open_server.url}/send_message/bob"
    http.post(url, data={"author": "alice", "message": "one", "client_id": "k"})
    reply = http.post(url, data={"author": "alice", "message": "two", "client_id": "k"})
    assert reply.status_code == 409
    assert reply.json()["error"] == "client_id_conflict"
