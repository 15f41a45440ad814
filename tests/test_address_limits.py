"""Per-address limits count the real visitor: a door vouches for its visitor's address,
nobody else can, and no one account's password checks starve another's.

Before: every door user reached the API from the door's address (127.0.0.1), so ten
wrong passwords in any browser tab, or ten new SSH users in an hour, locked out
everyone (behind "Too many failed attempts. Wait a minute"); and five addresses
looping logins of one account filled the password-check queue so that a login from
a sixth address got 429 in 6 of 7 tries.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from flask.testing import FlaskClient

from backend.core.errors import RateLimited
from backend.http.context import services
from backend.http.door import client_proof as api_proof
from backend.limits.hash_gate import HashGate, for_account
from backend.server.app import create_app
from doors.secret import client_proof as door_proof
from tests.support import ServerProcess, register, settings_for
from tui.client.errors import describe
from tui.client.http import ApiError, PairchatClient
from tui.door import door_headers

PASSWORD = "correct horse"
Start = Callable[..., ServerProcess]


@pytest.fixture
def api(tmp_path: Path) -> Iterator[tuple[FlaskClient, str]]:
    """The app in-process, held to the real login and registration limits, and its secret."""
    app = create_app(
        settings_for(tmp_path, register_rate_limit="10 per hour", login_rate_limit="10 per minute")
    )
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = "127.0.0.1"  # every request comes from the door
    with app.app_context():
        secret = services().ssh_identity.secret()
    yield client, secret


def visitor(secret: str, address: str) -> dict[str, str]:
    """What a door session sends: its visitor's address and the door's proof of it."""
    return {"X-Pairchat-Client": address, "X-Pairchat-Client-Proof": door_proof(secret, address)}


def login(client: FlaskClient, name: str, password: str, headers: dict[str, str]) -> Any:
    return client.post("/login", data={"username": name, "password": password}, headers=headers)


def test_the_door_and_the_api_make_the_same_proof() -> None:
    assert door_proof("s3cret", "203.0.113.5") == api_proof("s3cret", "203.0.113.5")
    assert door_proof("s3cret", "203.0.113.5") != door_proof("s3cret", "203.0.113.6")


def test_wrong_passwords_in_one_door_session_lock_out_only_that_visitor(
    api: tuple[FlaskClient, str],
) -> None:
    client, secret = api
    assert client.post("/register", data={"username": "bob", "password": PASSWORD}).status_code
    mallory, alice = visitor(secret, "203.0.113.5"), visitor(secret, "203.0.113.6")
    for n in range(10):
        assert login(client, "bob", f"guess {n}", mallory).status_code == 401
    refused = login(client, "bob", "guess 11", mallory)
    assert refused.status_code == 429
    message = refused.get_json()["message"]
    assert "wrong passwords from your address" in message and "try again in" in message
    assert "second" in message  # the real wait, not "a minute"
    # Another visitor of the same door signs in (before: 429, the door's address was spent).
    assert login(client, "bob", PASSWORD, alice).status_code == 200
    # And so does someone reaching the API directly from the door's machine.
    assert login(client, "bob", PASSWORD, {}).status_code == 200


def test_a_client_address_without_the_door_credential_counts_as_the_socket(
    api: tuple[FlaskClient, str],
) -> None:
    client, secret = api
    assert client.post("/register", data={"username": "bob", "password": PASSWORD}).status_code

    def forged(n: int) -> dict[str, str]:
        named = {"X-Pairchat-Client": f"198.51.100.{n}"}
        return [
            named,  # no credential
            named | {"X-Pairchat-Client-Proof": "0" * 64},
            named | {"X-Pairchat-Door": "not the secret"},
            named | {"X-Pairchat-Client-Proof": door_proof(secret, "1.2.3.4")},  # another's
        ][n % 4]

    for n in range(10):
        assert login(client, "bob", f"guess {n}", forged(n)).status_code == 401
    # All ten counted against the socket's address: it is spent, whatever address it names.
    assert login(client, "bob", PASSWORD, {}).status_code == 429
    assert login(client, "bob", PASSWORD, {"X-Pairchat-Client": "198.51.100.99"}).status_code == 429
    # The door itself (its secret) may name a visitor, as on /door/session.
    door = {"X-Pairchat-Client": "203.0.113.9", "X-Pairchat-Door": secret}
    assert login(client, "bob", PASSWORD, door).status_code == 200


def test_new_accounts_through_the_door_are_counted_per_visitor(
    api: tuple[FlaskClient, str],
) -> None:
    client, secret = api
    first, second = visitor(secret, "203.0.113.5"), visitor(secret, "2001:db8::7")
    for n in range(10):
        data = {"username": f"new{n}", "password": PASSWORD}
        assert client.post("/register", data=data, headers=first).status_code == 201
    refused = client.post(
        "/register", data={"username": "new10", "password": PASSWORD}, headers=first
    )
    assert refused.status_code == 429
    message = refused.get_json()["message"]
    assert "new accounts" in message and re.search(r"try again in \d+ minutes", message), message
    data = {"username": "someone-else", "password": PASSWORD}
    assert client.post("/register", data=data, headers=second).status_code == 201


def test_the_tui_says_which_limit_was_hit() -> None:
    """Before: every 429 read "Too many failed attempts. Wait a minute and try again."."""
    sign_ups = ApiError(
        429, "rate_limited", "too many registrations from your address; try again later"
    )
    assert describe(sign_ups) == "Too many registrations from your address; try again later."
    logins = ApiError(
        429, "rate_limited", "too many wrong passwords from your address: try again in 52 seconds"
    )
    assert "52 seconds" in describe(logins) and "failed attempts" not in describe(logins)


def test_a_door_session_sends_its_visitor_and_nothing_else_does() -> None:
    seen: list[httpx.Headers] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers)
        return httpx.Response(200, json={"status": "ok"})

    env = {"PAIRCHAT_CLIENT_ADDRESS": "203.0.113.5", "PAIRCHAT_CLIENT_PROOF": "ab" * 32}

    async def ask(headers: dict[str, str]) -> None:
        async with PairchatClient(
            "http://api", transport=httpx.MockTransport(answer), headers=headers
        ) as c:
            await c.healthz()

    asyncio.run(ask(door_headers(env)))
    asyncio.run(ask(door_headers({})))
    assert seen[0]["X-Pairchat-Client"] == "203.0.113.5"
    assert seen[0]["X-Pairchat-Client-Proof"] == "ab" * 32
    assert "X-Pairchat-Client" not in seen[1] and "X-Pairchat-Client-Proof" not in seen[1]


# -- the password-check queue ------------------------------------------------------------
def test_one_account_looped_from_many_addresses_cannot_fill_the_queue() -> None:
    """The gate itself: one check running, the queue full of one account's checks from
    five addresses; a check of another account from a sixth is let in, and goes next."""
    gate = HashGate(1, queue=8, per_address=2, timeout=10)
    release = threading.Event()
    order: list[str] = []
    errors: list[str] = []

    def check(address: str, account: str, hold: bool = False) -> None:
        try:
            with for_account(account), gate.slot(address):
                order.append(address)
                if hold:
                    release.wait(10)
        except RateLimited as exc:
            errors.append(f"{address}: {exc.message}")

    for n in range(2, 7):  # each looping address has been served before
        check(f"10.0.0.{n}", "loop")
    order.clear()
    running = threading.Thread(target=check, args=("10.0.0.2", "loop", True))
    running.start()
    _until(lambda: order == ["10.0.0.2"])
    waiting = [threading.Thread(target=check, args=(address, "loop")) for address in _loopers()]
    for thread in waiting:
        thread.start()
    _until(lambda: len(gate._waiting) == 8)
    sixth = threading.Thread(target=check, args=("10.0.0.7", "other"))
    sixth.start()
    _until(lambda: any(t.address == "10.0.0.7" for t in gate._waiting) or errors)
    assert not any(e.startswith("10.0.0.7") for e in errors), errors
    release.set()
    for thread in [running, *waiting, sixth]:
        thread.join(10)
    assert order[1] == "10.0.0.7", order  # next in line once the running check ended
    assert any("for this account" in e for e in errors), errors  # a looper's place was taken


def _loopers() -> list[str]:
    """Eight waiting checks from five addresses, within two each (10.0.0.2 runs one)."""
    return [
        "10.0.0.2",
        "10.0.0.3",
        "10.0.0.3",
        "10.0.0.4",
        "10.0.0.4",
        "10.0.0.5",
        "10.0.0.5",
        "10.0.0.6",
    ]


def _until(predicate: Callable[[], object], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_five_addresses_looping_one_account_leave_room_for_a_sixth(
    server_process: Start,
) -> None:
    """The real server with the real argon2 cost and limits: ten clients on five loopback
    addresses log in to one account in a loop; a login of another account from a sixth
    address is let in every time (before: 429 in 6 of 7 tries)."""
    env = {
        "PAIRCHAT_ARGON2_TIME_COST": "",
        "PAIRCHAT_ARGON2_MEMORY_COST": "",
        "PAIRCHAT_HASH_PER_ADDRESS": "",
        "PAIRCHAT_HASH_QUEUE": "",
        "PAIRCHAT_LOGIN_RATE_LIMIT": "",
    }
    server = server_process(env=env)
    register(server.url, "loop", PASSWORD)
    register(server.url, "carol", PASSWORD)
    stop = threading.Event()
    loops = [0]

    def looper(address: str) -> None:
        transport = httpx.HTTPTransport(local_address=address)
        with httpx.Client(transport=transport, timeout=30) as client:
            deadline = time.monotonic() + 90
            while not stop.is_set() and time.monotonic() < deadline:
                client.post(f"{server.url}/login", data={"username": "loop", "password": PASSWORD})
                loops[0] += 1

    threads = [
        threading.Thread(target=looper, args=(f"127.0.0.{2 + n // 2}",), daemon=True)
        for n in range(10)
    ]
    for thread in threads:
        thread.start()
    try:
        _until(lambda: loops[0] >= 20, timeout=60)  # the loop is running
        transport = httpx.HTTPTransport(local_address="127.0.0.7")
        with httpx.Client(transport=transport, timeout=30) as carol:
            statuses = []
            for _ in range(7):
                reply = carol.post(
                    f"{server.url}/login", data={"username": "carol", "password": PASSWORD}
                )
                statuses.append(reply.status_code)
    finally:
        stop.set()
        for thread in threads:
            thread.join(60)
    assert statuses == [200] * 7, statuses
