"""Issue 23, item 1: ``GET /metrics`` on a port of its own, summed across workers.

The real ``pairchat-server`` (granian, 2 workers) with ``--metrics-port``; the
figures are read as Prometheus reads them (its text format, parsed by
``prometheus_client``'s own parser) and must move as the server works.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.support import REPO, ServerProcess, bearer, free_port, http, register

Start = Callable[..., ServerProcess]
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
SEND_ROUTE = "/send_message/<username>"


def scrape(url: str) -> Samples:
    reply = httpx.get(f"{url}/metrics", timeout=10)
    assert reply.status_code == 200, reply.text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(reply.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def wait_for(url: str, check: Callable[[Samples], bool], what: str) -> Samples:
    deadline = time.monotonic() + 20
    while True:
        samples = scrape(url)
        if check(samples):
            return samples
        assert time.monotonic() < deadline, f"never: {what}; last scrape: {samples}"
        time.sleep(0.05)


def send(url: str, token: str, author: str, to: str, text: str) -> httpx.Response:
    return http.post(
        f"{url}/send_message/{to}", data={"author": author, "message": text}, headers=bearer(token)
    )


def test_metrics_move_as_the_server_works_across_two_workers(server_process: Start) -> None:
    port = free_port()
    metrics = f"http://127.0.0.1:{port}"
    server = server_process("--workers", "2", "--metrics-port", str(port))
    names = [f"user{n}" for n in range(5)]
    tokens = {name: register(server.url, name) for name in names}
    health = {"name": "pairchat_http_requests_total", "route": "/healthz", "method": "GET"}
    before = value(scrape(metrics), **health, status="200")  # the start's own checks
    for _ in range(20):
        assert http.get(f"{server.url}/healthz").status_code == 200
    # every worker's requests summed: 20 more whichever worker answered each
    wait_for(
        metrics,
        lambda s: value(s, **health, status="200") == before + 20,
        "20 health checks counted",
    )
    # a held wait shows in the gauge: one long-poll per user, summed across the workers
    held: list[int] = []
    cursors = {
        name: http.get(f"{server.url}/updates", headers=bearer(tokens[name])).json()["cursor"]
        for name in names[1:]
    }

    def wait(name: str) -> None:
        reply = httpx.get(
            f"{server.url}/updates",
            params={"since": cursors[name], "wait": 30},
            headers=bearer(tokens[name]),
            timeout=40,
        )
        held.append(reply.status_code)

    threads = [threading.Thread(target=wait, args=(name,)) for name in names[1:]]
    for thread in threads:
        thread.start()
    wait_for(metrics, lambda s: value(s, "pairchat_held_waits") == 4, "4 held waits")
    # a send moves the counter, and answers the held wait of its addressee
    assert send(server.url, tokens["user0"], "user0", "user1", "hello").status_code < 300
    samples = wait_for(
        metrics, lambda s: value(s, "pairchat_messages_sent_total") == 1, "one message sent"
    )
    sends = [
        v
        for (name, labels), v in samples.items()
        if name == "pairchat_http_requests_total" and ("route", SEND_ROUTE) in labels
    ]
    assert sends == [1.0], sends
    assert value(samples, "pairchat_http_request_duration_seconds_count", route=SEND_ROUTE) == 1
    wait_for(metrics, lambda s: value(s, "pairchat_held_waits") == 3, "user1's wait answered")
    # ... and the wake-up was timed, from the send's commit to the wait running again
    woke = wait_for(
        metrics,
        lambda s: value(s, "pairchat_wakeup_latency_seconds_count") >= 1,
        "the wake-up's latency observed",
    )
    assert 0 < value(woke, "pairchat_wakeup_latency_seconds_sum") < 5
    wait_for(metrics, lambda s: value(s, "pairchat_open_pair_files") >= 1, "the pair file open")
    # what only the main process knows
    assert value(samples, "pairchat_workers") == 2
    assert value(samples, "pairchat_held_capacity") > 4
    # every figure the sample dashboard draws is one the server exports
    dashboard = (REPO / "deploy" / "grafana-dashboard.json").read_text()
    exported = {name for name, _ in samples}
    # a labelled family with no sample yet (no refusal so far, no door running) is not in a
    # scrape: its name, from the modules that define them (the doors count their sessions)
    for module in ("backend/server/metrics.py", "doors/limits.py"):
        source = (REPO / module).read_text()
        exported |= set(re.findall(r'"(pairchat_\w+)"', source))
        exported |= {f"{name}_total" for name in re.findall(r'Counter\(\s*"(\w+)"', source)}
    drawn = set(re.findall(r"pairchat_[a-z_]+", dashboard))
    assert drawn and drawn <= exported, drawn - exported
    assert value(samples, "pairchat_disk_free_bytes") > 0
    assert value(samples, "pairchat_data_folder_bytes") > 0
    assert value(samples, "pairchat_start_time_seconds") <= time.time()
    server.stop()
    for thread in threads:
        thread.join(timeout=20)
    assert held == [200] * 4


def test_a_rate_limit_refusal_counts_under_its_limit(server_process: Start) -> None:
    port = free_port()
    metrics = f"http://127.0.0.1:{port}"
    server = server_process(
        "--metrics-port", str(port), env={"PAIRCHAT_SEND_RATE_LIMIT": "2 per minute"}
    )
    alice, _ = register(server.url, "alice"), register(server.url, "bob")
    codes = [send(server.url, alice, "alice", "bob", f"m{n}").status_code for n in range(4)]
    refused = codes.count(429)
    assert refused >= 1, codes
    wait_for(
        metrics,
        lambda s: (
            value(s, "pairchat_rate_limit_refusals_total", limit="conversations.send_message")
            == refused
            and value(s, "pairchat_messages_sent_total") == len(codes) - refused
        ),
        f"{refused} refusals and {len(codes) - refused} sends counted",
    )


def test_metrics_are_not_on_the_public_port(server_process: Start) -> None:
    """Off by default; and with --metrics-port, only on that port (loopback)."""
    plain = server_process()
    assert http.get(f"{plain.url}/metrics").status_code == 404
    port = free_port()
    server = server_process("--metrics-port", str(port))
    assert http.get(f"{server.url}/metrics").status_code == 404
    assert "pairchat_http_requests_total" in httpx.get(f"http://127.0.0.1:{port}/metrics").text
    holder = (server.data_dir / "_server.lock").read_text()
    assert f"metrics http://127.0.0.1:{port}" in holder


def test_password_checks_running_and_queued_show_while_a_burst_waits(
    server_process: Start,
) -> None:
    """argon2 at its real cost, one check at a time: eight registrations at once queue."""
    port = free_port()
    metrics = f"http://127.0.0.1:{port}"
    server = server_process(
        "--metrics-port",
        str(port),
        env={
            "PAIRCHAT_ARGON2_TIME_COST": "3",
            "PAIRCHAT_ARGON2_MEMORY_COST": "65536",
            "PAIRCHAT_HASH_CONCURRENCY": "1",
        },
    )
    codes: list[int] = []

    def join(n: int) -> None:
        reply = http.post(
            f"{server.url}/register", data={"username": f"user{n}", "password": "correct horse"}
        )
        codes.append(reply.status_code)

    threads = [threading.Thread(target=join, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    wait_for(
        metrics,
        lambda s: (
            value(s, "pairchat_password_checks_running") == 1
            and value(s, "pairchat_password_checks_queued") >= 1
        ),
        "one check running and others queued",
    )
    for thread in threads:
        thread.join(timeout=60)
    assert codes == [201] * 8, codes
    wait_for(
        metrics,
        lambda s: (
            value(s, "pairchat_password_checks_running") == 0
            and value(s, "pairchat_password_checks_queued") == 0
        ),
        "the burst done",
    )
