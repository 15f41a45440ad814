"""Faults simulated for real: restarts under long-poll, a full disk, a read-only
filesystem, a locked accounts file and a corrupt conversation file.

- restart: clients hold long-polls (``wait``) when the server dies (SIGKILL) or
  stops (SIGTERM); they reconnect to the same address and resume from their
  cursors (``after_id``, ``/updates`` ``since``) and miss nothing.
- full disk: the data folder is a tiny tmpfs filled to the last byte.
- read-only: the data folder is an ext4 filesystem on a loop device that the
  kernel turns read-only on an error (``errors=remount-ro`` and ext4's own
  ``trigger_fs_error``), exactly what a failing disk does to a running server.
- a lock held on the accounts file by another process (the 503 mapping of "busy").
- a corrupt pair file (its header overwritten while the server is stopped).

Tests run as root, and root ignores permission bits, so ``chmod`` cannot make a
folder read-only here: these use real filesystems (mount needs root).
"""

from __future__ import annotations

import errno
import os
import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import LiveServer, bearer, free_port, held_waits_become, register, until
from tests.test_crash_safety import KillableServer, integrity, killable_server

__all__ = ["killable_server"]  # the fixture, imported for these tests

RETRYABLE = (httpx.TransportError,)


def send(
    url: str, token: str, author: str, to: str, text: str, cid: str | None = None
) -> httpx.Response:
    data = {"author": author, "message": text}
    if cid:
        data["client_id"] = cid
    return httpx.post(f"{url}/send_message/{to}", data=data, headers=bearer(token), timeout=30)


def history(url: str, token: str, a: str, b: str, **extra: Any) -> httpx.Response:
    return httpx.post(
        f"{url}/get_message_history",
        data={"user_one": a, "user_two": b, **extra},
        headers=bearer(token),
        timeout=30,
    )


def assert_unavailable(reply: httpx.Response) -> None:
    """The 503 of docs/api.md: JSON, never an HTML page or a 500."""
    assert reply.status_code == 503, (reply.status_code, reply.text)
    assert reply.headers["content-type"] == "application/json"
    body = reply.json()
    assert body["success"] is False and body["error"] == "unavailable" and body["message"]


def mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True, capture_output=True, timeout=30)


def umount(target: Path) -> None:
    done = subprocess.run(["umount", str(target)], capture_output=True, timeout=30)
    if done.returncode != 0:  # still busy: detach it, the kernel frees it when unused
        subprocess.run(["umount", "-l", str(target)], check=True, timeout=30)


# -- (a) restart while clients long-poll --------------------------------------------


class Poller(threading.Thread):
    """A client that long-polls as the TUI does and reconnects, with the same cursor,
    whenever the server is gone. ``history``: alice's conversation with bob by
    ``after_id``; ``feed``: alice's ``/updates`` by ``since``."""

    def __init__(self, url: str, token: str, kind: str, until: Callable[[Poller], bool]) -> None:
        super().__init__(daemon=True)
        self.url, self.token, self.kind, self.until = url, token, kind, until
        self.received: list[dict[str, Any]] = []  # history: the messages, in order
        self.feed_last_id = 0  # feed: the newest id seen for bob
        self.polls = 0
        self.reconnects = 0
        self.failures: list[str] = []

    def run(self) -> None:
        after_id, since = 0, ""
        deadline = time.monotonic() + 90
        with httpx.Client(base_url=self.url, headers=bearer(self.token), timeout=30) as client:
            while not self.until(self) and time.monotonic() < deadline:
                try:
                    if self.kind == "history":
                        reply = client.post(
                            "/get_message_history",
                            data={
                                "user_one": "alice",
                                "user_two": "bob",
                                "after_id": after_id,
                                "wait": 5,
                            },
                        )
                    else:
                        reply = client.get("/updates", params={"since": since, "wait": 5})
                except RETRYABLE:
                    self.reconnects += 1
                    time.sleep(0.05)
                    continue
                self.polls += 1
                if reply.status_code != 200:
                    self.failures.append(f"{reply.status_code} {reply.text}")
                    return
                body = reply.json()
                if self.kind == "history":
                    self.received.extend(body["history"])
                    if body["history"]:
                        after_id = body["history"][-1]["id"]
                else:
                    since = body["cursor"]
                    for change in body["changed"]:
                        if change["username"] == "bob":
                            self.feed_last_id = max(self.feed_last_id, change["last_id"])


def send_until_acknowledged(url: str, token: str, n: int) -> int:
    """bob's outbox: retry the same client_id until the server answers."""
    deadline = time.monotonic() + 60
    while True:
        try:
            reply = send(url, token, "bob", "alice", f"m{n}", f"cid-{n}")
        except RETRYABLE:
            assert time.monotonic() < deadline, "the server never came back"
            time.sleep(0.05)
            continue
        assert reply.status_code == 200, reply.text
        sent: int = reply.json()["id"]
        return sent


def reconnected(pollers: list[Poller], seen: list[int]) -> bool:
    """Every poller has failed to reach the server since its count was ``seen``."""
    return all(poller.reconnects > before for poller, before in zip(pollers, seen, strict=True))


@pytest.mark.parametrize("how", ["sigkill", "sigterm"])
def test_long_polls_resume_from_their_cursors_across_a_restart(
    tmp_path: Path, killable_server: Callable[..., KillableServer], how: str
) -> None:
    data_dir = tmp_path / "data"
    metrics_port = free_port()
    metrics = f"http://127.0.0.1:{metrics_port}"
    metrics_args = ("--metrics-port", str(metrics_port))
    server = killable_server(data_dir, *metrics_args)
    alice, bob = register(server.url, "alice"), register(server.url, "bob")
    total = 30
    ids: list[int] = []
    pollers = [
        Poller(server.url, alice, "history", lambda p: len(p.received) >= total),
        Poller(
            server.url,
            alice,
            "feed",
            lambda p: bool(ids) and len(ids) == total and p.feed_last_id >= ids[-1],
        ),
    ]
    for poller in pollers:
        poller.start()
    for n in range(total):
        if n in (10, 20):
            # gates, not sleeps: both pollers held in a long-poll (the server says so) ...
            held_waits_become(metrics, 2)
            seen = [poller.reconnects for poller in pollers]
            if how == "sigkill":
                server.kill()
            else:
                server.stop()
            # ... and both see the server gone (a refused connection) before it is back
            until(partial(reconnected, pollers, seen), "both clients to find the server gone")
            server = killable_server(data_dir, *metrics_args, port=server.port)
        ids.append(send_until_acknowledged(server.url, bob, n))
    for poller in pollers:
        poller.join(timeout=60)
        assert not poller.is_alive(), "a client never caught up"
        assert not poller.failures, poller.failures
    history_poller, feed_poller = pollers
    got = history_poller.received
    assert [m["message"] for m in got] == [f"m{n}" for n in range(total)], "all, once, in order"
    assert [m["id"] for m in got] == ids
    assert feed_poller.feed_last_id == ids[-1]
    assert history_poller.reconnects > 0 and feed_poller.reconnects > 0, "they did see it go"


# -- (b) a full disk, a read-only filesystem ------------------------------------------


@pytest.fixture
def tiny_fs(tmp_path: Path) -> Iterator[Path]:
    """An 8 MiB tmpfs, mounted for this test only.

    Room for two write-ahead logs between checkpoints: a message writes a dozen pages
    (its row, the revision index, the search index), and on 3 MiB the logs alone
    filled the disk again after the filler was freed.
    """
    target = tmp_path / "tiny"
    target.mkdir()
    mount("-t", "tmpfs", "-o", "size=8m,mode=0755", "tmpfs", str(target))
    yield target
    umount(target)


def fill(folder: Path) -> Path:
    """Write zeros until the filesystem refuses: ENOSPC for real."""
    filler = folder / "filler.bin"
    chunk = b"\0" * 4096
    with open(filler, "wb", buffering=0) as out:
        try:
            while True:
                out.write(chunk)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    return filler


def check_stored_exactly(url: str, token: str, acked: dict[str, int], refused: set[str]) -> None:
    reply = history(url, token, "alice", "bob")
    assert reply.status_code == 200, reply.text
    messages = reply.json()["history"]
    texts = [m["message"] for m in messages]
    assert len(texts) == len(set(texts)), "nothing stored twice"
    by_text = {m["message"]: m["id"] for m in messages}
    for text, sent_id in acked.items():
        assert by_text.get(text) == sent_id, f"acknowledged {text!r} as {sent_id}, stored?"
    stored_refused = sorted(refused & set(by_text))
    assert not stored_refused, f"answered 503 ('nothing was stored') but stored: {stored_refused}"


def test_a_full_disk_gets_503_and_service_resumes_when_space_is_freed(
    tiny_fs: Path, killable_server: Callable[..., KillableServer]
) -> None:
    server = killable_server(tiny_fs)
    alice, bob = register(server.url, "alice"), register(server.url, "bob")
    acked: dict[str, int] = {}
    for n in range(3):
        reply = send(server.url, alice, "alice", "bob", f"before {n}", f"b{n}")
        acked[f"before {n}"] = reply.json()["id"]

    filler = fill(tiny_fs)
    refused: dict[str, str] = {}  # text -> client_id
    text = "x" * 3000  # each send needs fresh pages
    for n in range(40):
        body = f"{n} {text}"
        reply = send(server.url, alice, "alice", "bob", body, f"f{n}")
        if reply.status_code == 200:
            acked[body] = reply.json()["id"]  # there was room (a reused WAL page): stored
        else:
            assert_unavailable(reply)
            refused[body] = f"f{n}"
    print(f"\nfull disk: {len(refused)} refused, {len(acked) - 3} stored")
    assert refused, "the full disk was noticed"
    assert "full" in send(server.url, alice, "alice", "bob", "one more").json()["message"]
    # reads, sign-ins and health keep working while the disk is full
    assert history(server.url, bob, "alice", "bob").status_code == 200
    assert httpx.get(f"{server.url}/healthz").status_code == 200
    check_stored_exactly(server.url, bob, acked, set(refused))

    filler.unlink()  # the fault clears
    reply = send(server.url, alice, "alice", "bob", "after", "a0")
    assert reply.status_code == 200, reply.text
    acked["after"] = reply.json()["id"]
    for body, cid in refused.items():  # the clients' outboxes retry
        reply = send(server.url, alice, "alice", "bob", body, cid)
        assert reply.status_code == 200 and reply.json()["duplicate"] is False, reply.text
        acked[body] = reply.json()["id"]
    check_stored_exactly(server.url, bob, acked, set())
    server.stop()
    checks = integrity(tiny_fs)
    assert set(checks.values()) == {"ok"}, checks


@pytest.fixture
def failing_disk(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A 16 MiB ext4 filesystem on a loop device, mounted ``errors=remount-ro``.

    ``fail()`` makes the kernel record a filesystem error (ext4's
    ``trigger_fs_error``), and the kernel remounts it read-only at once, under
    any open files: what a failing disk does. That cannot be undone while files
    are open (``emergency_ro``); ``repair()`` is the operator's way back: with the
    server stopped, unmount, ``e2fsck``, mount again.
    """
    image, target = tmp_path / "disk.img", tmp_path / "disk"
    target.mkdir()
    with open(image, "wb") as out:
        out.truncate(16 * 1024 * 1024)
    subprocess.run(["mkfs.ext4", "-q", "-F", str(image)], check=True, timeout=60)

    def attach() -> None:
        mount("-o", "loop,errors=remount-ro", str(image), str(target))

    def device() -> str:
        found = subprocess.run(
            ["findmnt", "-n", "-o", "SOURCE", str(target)], capture_output=True, text=True
        )
        return Path(found.stdout.strip()).name

    def fail() -> None:
        Path(f"/sys/fs/ext4/{device()}/trigger_fs_error").write_text("1")
        with pytest.raises(OSError) as refused:
            (target / "probe").write_text("x")
        assert refused.value.errno == errno.EROFS

    def repair() -> None:
        umount(target)
        subprocess.run(["e2fsck", "-fy", str(image)], capture_output=True, timeout=60)
        attach()

    attach()
    yield {"path": target / "data", "fail": fail, "repair": repair}
    umount(target)


def test_a_filesystem_gone_read_only_gets_503_and_nothing_acknowledged_is_lost(
    failing_disk: dict[str, Any], killable_server: Callable[..., KillableServer]
) -> None:
    """With ``SQLITE_SYNCHRONOUS=FULL`` (each commit reaches the disk before the reply).

    With the default ``NORMAL``, a commit is only in the page cache when the 200
    goes out; when the kernel turns the filesystem read-only it never reaches the
    disk, so acknowledged sends (and accounts, tokens) are lost exactly as on a
    power cut -- see the report accompanying this test.
    """
    data_dir: Path = failing_disk["path"]
    durable = {"PAIRCHAT_SQLITE_SYNCHRONOUS": "FULL"}
    server = killable_server(data_dir, env=durable)
    alice, bob = register(server.url, "alice"), register(server.url, "bob")
    register(server.url, "carol")
    acked: dict[str, int] = {}
    for n in range(5):
        reply = send(server.url, alice, "alice", "bob", f"before {n}", f"b{n}")
        acked[f"before {n}"] = reply.json()["id"]

    failing_disk["fail"]()
    refused: dict[str, str] = {}
    for n in range(10):
        body = f"during {n}"
        reply = send(server.url, alice, "alice", "bob", body, f"d{n}")
        assert_unavailable(reply)
        refused[body] = f"d{n}"
    # a pair that has no file yet cannot get one
    assert_unavailable(send(server.url, alice, "alice", "carol", "new pair"))
    assert httpx.get(f"{server.url}/healthz").status_code == 200, "still serving"
    reply = history(server.url, bob, "alice", "bob")
    assert reply.status_code in (200, 503), reply.text  # reads may or may not work
    if reply.status_code == 503:
        assert_unavailable(reply)

    server.stop()
    failing_disk["repair"]()
    server = killable_server(data_dir, port=server.port, env=durable)
    check_stored_exactly(server.url, bob, acked, set(refused))
    for body, cid in refused.items():
        reply = send(server.url, alice, "alice", "bob", body, cid)
        assert reply.status_code == 200, reply.text
        acked[body] = reply.json()["id"]
    check_stored_exactly(server.url, bob, acked, set())
    server.stop()
    checks = integrity(data_dir)
    assert set(checks.values()) == {"ok"}, checks


# -- a lock held on the accounts file --------------------------------------------------


def test_a_send_during_a_locked_accounts_file_is_stored_once_and_counted_once(
    live_server: Callable[..., LiveServer],
) -> None:
    """Another process holds the accounts file's write lock (a backup tool, a stuck
    writer) past the busy timeout, while the pair's file is writable. The send's
    reply must tell the truth: a 503 means "nothing was stored" (docs/api.md), a 200
    means stored. The client retries with its client_id once the lock is gone; the
    message then exists once and the recipient's unread count counts it once."""
    server = live_server()
    alice, bob = register(server.url, "alice"), register(server.url, "bob")
    assert send(server.url, alice, "alice", "bob", "first", "c1").status_code == 200

    holder = sqlite3.connect(server.data_dir / "_accounts.sqlite3", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # the write lock, held
    try:
        reply = send(server.url, alice, "alice", "bob", "second", "c2")
        # reads go on meanwhile (WAL readers do not wait for the writer)
        during = history(server.url, bob, "alice", "bob")
        assert during.status_code == 200
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    stored = [m["message"] for m in during.json()["history"]]
    if reply.status_code == 200:
        assert stored == ["first", "second"], "acknowledged, so stored"
    else:
        assert_unavailable(reply)
        assert stored == ["first"], f"answered 503 ('{reply.json()['message']}') but stored"
    retry = send(server.url, alice, "alice", "bob", "second", "c2")
    assert retry.status_code == 200, retry.text
    final = [m["message"] for m in history(server.url, bob, "alice", "bob").json()["history"]]
    assert final == ["first", "second"]
    feed = httpx.get(f"{server.url}/updates", headers=bearer(bob)).json()["changed"]
    assert {c["username"]: (c["last_id"], c["unread"]) for c in feed} == {"alice": (2, 2)}


# -- (c) a corrupt conversation file ---------------------------------------------------


def test_a_corrupt_pair_file_affects_only_that_pair(
    tmp_path: Path, killable_server: Callable[..., KillableServer]
) -> None:
    data_dir = tmp_path / "data"
    server = killable_server(data_dir)
    tokens = {name: register(server.url, name) for name in ("alice", "bob", "carol", "dave")}
    for author, to in (("alice", "bob"), ("alice", "carol"), ("carol", "dave")):
        assert send(server.url, tokens[author], author, to, f"{author} to {to}").status_code == 200
    server.stop()

    broken = data_dir / "alice_bob.db"
    conn = sqlite3.connect(broken)  # fold the WAL in: the header page must be read from disk
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    assert not Path(f"{broken}-wal").exists()
    with open(broken, "r+b") as file:  # the header: "SQLite format 3\0", page size, ...
        file.write(os.urandom(100))
    server = killable_server(data_dir, port=server.port)
    url, alice, bob = server.url, tokens["alice"], tokens["bob"]

    for _ in range(3):  # every time, not just the first
        assert_unavailable(history(url, alice, "alice", "bob"))
        assert_unavailable(history(url, bob, "bob", "alice", after_id=0, wait=1))
        assert_unavailable(send(url, bob, "bob", "alice", "into the void", "v1"))
        reply = httpx.post(
            f"{url}/create_conversation_db",
            data={"user_one": "alice", "user_two": "bob"},
            headers=bearer(alice),
            timeout=30,
        )
        assert_unavailable(reply)
        assert "damaged" in reply.json()["message"]
    # everyone else, and alice's other conversations, carry on
    assert send(url, alice, "alice", "carol", "still here").status_code == 200
    got = history(url, tokens["carol"], "alice", "carol").json()["history"]
    assert [m["message"] for m in got] == ["alice to carol", "still here"]
    assert send(url, tokens["dave"], "dave", "carol", "hi carol").status_code == 200
    assert len(history(url, tokens["dave"], "carol", "dave").json()["history"]) == 2
    for name in ("alice", "bob", "carol"):
        assert httpx.get(f"{url}/updates", headers=bearer(tokens[name])).status_code == 200
    assert httpx.get(f"{url}/friends", headers=bearer(tokens["carol"])).status_code == 200
    assert httpx.get(f"{url}/healthz").json()["status"] == "ok"
    # the damaged file is left as it was, for the operator to restore from backup
    assert broken.read_bytes()[:16] != b"SQLite format 3\0"
    # alice's friend list still lists bob and carol: one damaged file must not take
    # down the whole list (bob's row has no readable last message)
    friends = httpx.get(f"{url}/friends", headers=bearer(alice), timeout=30)
    assert friends.status_code == 200, friends.text
    assert {f["username"] for f in friends.json()["friends"]} == {"bob", "carol"}
