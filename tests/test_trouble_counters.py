"""Issue 23: multi-node mode's PostgreSQL and Redis failures, counted as they happen.

``RedisWakeups.on_trouble`` and ``PgAccountsDb.on_error`` are what the metrics
(``pairchat_redis_errors_total``, ``pairchat_redis_reconnects_total``,
``pairchat_postgres_errors_total``) hang on: here a real Redis is killed and started
again, and a real psycopg pool reaches for a PostgreSQL that is not there; then a
multi-node server's scrape shows both kinds as they happen to it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from backend.core.errors import StorageUnavailable
from backend.storage.accounts_db import PgAccountsDb
from backend.storage.sql import PgDatabase
from backend.wakeups.notify import Notifier, user_key
from backend.wakeups.pubsub import RedisWakeups
from tests.pg_server import PostgresServer
from tests.pg_server import postgres_server as postgres_server  # the fixtures
from tests.pg_server import postgres_url as postgres_url
from tests.redis_server import RedisServer
from tests.redis_server import redis_server as redis_server  # the fixture
from tests.support import ServerProcess, bearer, free_port, http, register


def until(check: Callable[[], bool], what: str, within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


@pytest.mark.live  # a real redis-server
def test_a_redis_restart_counts_errors_then_reconnects(redis_server: RedisServer) -> None:
    notifier = Notifier()
    link = RedisWakeups(redis_server.url, notifier, "node-a").start()
    heard: list[tuple[str, str]] = []
    link.on_trouble = lambda event, what: heard.append((event, what))
    try:
        assert link.wait_ready(10)
        notifier.notify([user_key("bob")])
        until(lambda: link.counters.published == 1, "the first publish")
        assert heard == []
        redis_server.kill()
        notifier.notify([user_key("bob")])  # dropped: Redis is down
        until(lambda: ("error", "publish") in heard, "the publish error")
        until(lambda: ("error", "subscribe") in heard, "the lost subscription")
        redis_server.start()
        until(lambda: ("reconnect", "subscribe") in heard, "the subscription back")
        until(lambda: ("reconnect", "publish") in heard, "publishing back")
        assert set(heard) == {
            ("error", "publish"),
            ("error", "subscribe"),
            ("reconnect", "subscribe"),
            ("reconnect", "publish"),
        }, heard
    finally:
        link.close()


def test_a_postgres_failure_that_reaches_the_caller_is_counted_by_operation() -> None:
    failed: list[str] = []
    PgAccountsDb.on_error = failed.append
    db = PgAccountsDb(PgDatabase(f"postgresql://pairchat@127.0.0.1:{free_port()}/pairchat"))
    try:
        with pytest.raises(StorageUnavailable):
            db.read(lambda conn: conn.execute("SELECT 1"))
        with pytest.raises(StorageUnavailable):
            db.write(lambda conn: conn.execute("SELECT 1"))
        with pytest.raises(StorageUnavailable):
            db.data_version()
        assert failed == ["read", "write", "read"]
    finally:
        PgAccountsDb.on_error = None
        db.close()


def scrape(port: int) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def total(port: int, name: str, **labels: str) -> float:
    wanted = set(labels.items())
    return sum(v for (n, found), v in scrape(port).items() if n == name and wanted <= found)


@pytest.mark.live  # a multi-node pairchat-server, a real Redis and PostgreSQL
def test_a_multi_node_server_exports_its_redis_and_postgres_trouble(
    tmp_path: Path,
    redis_server: RedisServer,
    postgres_server: PostgresServer,
    postgres_url: str,
) -> None:
    port = free_port()
    server = ServerProcess(
        tmp_path / "data",
        *("--node", "n1", "--database-url", postgres_url, "--redis-url", redis_server.url),
        *("--metrics-port", str(port)),
    ).start()
    try:
        token = register(server.url, "alice")
        redis_server.kill()
        until(
            lambda: total(port, "pairchat_redis_errors_total", what="subscribe") >= 1,
            "the lost subscription counted",
        )
        redis_server.start()
        until(
            lambda: total(port, "pairchat_redis_reconnects_total", what="subscribe") >= 1,
            "the subscription back, counted",
            within=20,
        )
        postgres_server.drop_database(postgres_url.rsplit("/", 1)[1])  # gone for good
        assert http.get(f"{server.url}/me", headers=bearer(token)).status_code == 503
        until(
            lambda: total(port, "pairchat_postgres_errors_total") >= 1,
            "the PostgreSQL failure counted",
        )
    finally:
        server.stop()
