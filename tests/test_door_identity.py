"""The SSH door's identity routes through the real server: an SSH key is an account.

The secret check, tickets and claims (with registration's rules), a second key
refused until it is linked with a one-time code, removal (its sessions end),
accounts without a password, and keys read strictly — never a 500.
"""

from __future__ import annotations

import base64
import sqlite3
import stat
from collections.abc import Callable
from typing import Any

import asyncssh
import httpx
import pytest

from backend.http.auth import DOOR_HEADER
from tests.support import Server, bearer, http, register

pytestmark = pytest.mark.both_tiers  # in-process (fast tier) and live

# made by asyncssh; its fingerprint as `ssh-keygen -lf` printed it
VECTOR = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINmISbGqrK8fy/NN/buAfU4S4sxngQBy+2tMZt3t5w6A "
    "vector@pairchat"
)
VECTOR_FINGERPRINT = "SHA256:kmwHPAhfZ93e6S7xicXndcjOodEAhSZwokBHhsQfLO8"


def new_key(kind: str = "ssh-ed25519", comment: str = "me@laptop", **options: Any) -> str:
    key = asyncssh.generate_private_key(kind, comment=comment, **options)
    return str(key.export_public_key().decode("ascii").strip())


def fingerprint(line: str) -> str:
    found: str = asyncssh.import_public_key(line).get_fingerprint("sha256")
    return found


class Door:
    """What the SSH door does with the API: ask who a key is, with the secret."""

    def __init__(self, server: Server) -> None:
        assert server.services is not None
        self.server = server
        self.secret = server.services.ssh_identity.secret()

    def ask(self, key: str, secret: str | None = None) -> httpx.Response:
        headers = {DOOR_HEADER: self.secret if secret is None else secret}
        return http.post(
            f"{self.server.url}/door/session", data={"public_key": key}, headers=headers
        )

    def session(self, key: str) -> dict[str, Any]:
        reply = self.ask(key)
        assert reply.status_code == 200, reply.text
        body: dict[str, Any] = reply.json()
        return body

    def ticket(self, key: str) -> str:
        body = self.session(key)
        assert body["known"] is False, body
        ticket: str = body["ticket"]
        return ticket


def post(server: Server, path: str, token: str | None = None, **data: Any) -> httpx.Response:
    return http.post(f"{server.url}{path}", data=data, headers=bearer(token) if token else {})


def claim(server: Server, ticket: str, username: str, **extra: Any) -> httpx.Response:
    return post(server, "/door/claim", ticket=ticket, username=username, **extra)


def error(reply: httpx.Response) -> tuple[int, str]:
    return reply.status_code, reply.json()["error"]


def keys_of(server: Server, token: str) -> list[dict[str, Any]]:
    reply = http.get(f"{server.url}/keys", headers=bearer(token))
    assert reply.status_code == 200, reply.text
    found: list[dict[str, Any]] = reply.json()["keys"]
    return found


def test_the_door_secret_is_checked(server: Server) -> None:
    door, key = Door(server), new_key()
    missing = http.post(f"{server.url}/door/session", data={"public_key": key})
    assert error(missing) == (401, "unauthorized")
    assert error(door.ask(key, secret="not-the-secret")) == (403, "forbidden")
    assert error(door.ask(key, secret=door.secret + "x")) == (403, "forbidden")
    token = register(server.url, "alice")  # a user's token is no door secret
    with_token = http.post(
        f"{server.url}/door/session", data={"public_key": key}, headers=bearer(token)
    )
    assert error(with_token) == (401, "unauthorized")
    assert door.session(key)["known"] is False
    secret_file = server.data_dir / "door.secret"
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    assert secret_file.read_text().strip() == door.secret


def test_an_unknown_key_claims_an_account_without_a_password(server: Server) -> None:
    door, key = Door(server), new_key(comment="carol@laptop")
    ticket = door.ticket(key)
    reply = claim(server, ticket, "Carol", display_name="Carol D")
    assert reply.status_code == 201, reply.text
    body = reply.json()
    assert (body["username"], body["display_name"]) == ("carol", "Carol D")
    me = http.get(f"{server.url}/me", headers=bearer(body["token"])).json()
    assert me["username"] == "carol"
    assert error(claim(server, ticket, "carol2")) == (400, "invalid_ticket"), "one-time"
    known = door.session(key)
    assert (known["known"], known["username"], known["display_name"]) == (True, "carol", "Carol D")
    assert known["token"] != body["token"], "a fresh token for each session"
    assert http.get(f"{server.url}/me", headers=bearer(known["token"])).status_code == 200
    (listed,) = keys_of(server, known["token"])
    assert listed["fingerprint"] == fingerprint(key)
    assert (listed["type"], listed["comment"]) == ("ssh-ed25519", "carol@laptop")
    for password in ("", "correct horse", "x" * 8):
        login = post(server, "/login", username="carol", password=password)
        assert error(login) == (401, "bad_credentials"), "no password signs in"


def test_a_claim_follows_the_rules_of_a_registration(app_server: Callable[..., Server]) -> None:
    server = app_server()
    door = Door(server)
    register(server.url, "alice")
    ticket = door.ticket(new_key())
    assert error(claim(server, ticket, "alice")) == (409, "username_taken")
    assert error(claim(server, ticket, "no_underscores")) == (400, "invalid_username")
    display = claim(server, ticket, "bob", display_name="ALICE")
    assert error(display) == (409, "display_name_taken")
    assert claim(server, ticket, "bob").status_code == 201, "a refused claim keeps its ticket"
    for bad in ("", "x" * 600, "not a ticket"):
        assert error(claim(server, bad, "dave")) in ((400, "invalid_ticket"),)
    closed = app_server(registration="closed")
    ticket = Door(closed).ticket(new_key())
    assert error(claim(closed, ticket, "erin")) == (403, "registration_closed")
    invited = app_server(registration="invite")
    ticket = Door(invited).ticket(new_key())
    assert error(claim(invited, ticket, "erin")) == (403, "invalid_invite")
    assert invited.services is not None
    invite = invited.services.accounts.make_invite()
    assert claim(invited, ticket, "erin", invite=invite).status_code == 201


def test_a_second_key_is_refused_until_it_is_linked(server: Server) -> None:
    door, laptop, desk = Door(server), new_key(comment="laptop"), new_key(comment="desk")
    alice = claim(server, door.ticket(laptop), "alice").json()["token"]
    ticket = door.ticket(desk)
    assert door.session(desk)["known"] is False, "a second key is nobody yet"
    assert error(claim(server, ticket, "alice")) == (409, "username_taken")
    made = post(server, "/keys/link_code", alice).json()
    assert made["success"] is True and made["expires_in"] == 600
    code = made["code"]
    assert len(code) == 9 and code[4] == "-"
    assert error(post(server, "/door/link", ticket=ticket, code="0000-0000")) == (
        400,
        "invalid_code",
    )
    assert error(post(server, "/door/link", ticket=ticket, code="short")) == (400, "invalid_code")
    linked = post(server, "/door/link", ticket=ticket, code=code.lower().replace("-", ""))
    assert linked.status_code == 200, linked.text
    assert linked.json()["username"] == "alice"
    assert http.get(f"{server.url}/me", headers=bearer(linked.json()["token"])).status_code == 200
    known = door.session(desk)
    assert (known["known"], known["username"]) == (True, "alice")
    assert sorted(k["fingerprint"] for k in keys_of(server, alice)) == sorted(
        fingerprint(line) for line in (laptop, desk)
    )
    # the code and the ticket are used up
    again = post(server, "/door/link", ticket=door.ticket(new_key()), code=code)
    assert error(again) == (400, "invalid_code")
    assert error(post(server, "/door/link", ticket=ticket, code=code)) == (400, "invalid_ticket")


def test_a_new_code_replaces_the_last_and_one_key_is_one_account(server: Server) -> None:
    door, key = Door(server), new_key()
    alice, bob = register(server.url, "alice"), register(server.url, "bob")
    first = post(server, "/keys/link_code", alice).json()["code"]
    second = post(server, "/keys/link_code", alice).json()["code"]
    # two sessions of the same new key at once: two tickets for it
    ticket, other_ticket, third_ticket = door.ticket(key), door.ticket(key), door.ticket(key)
    assert error(post(server, "/door/link", ticket=ticket, code=first)) == (400, "invalid_code")
    assert post(server, "/door/link", ticket=ticket, code=second).status_code == 200
    assert door.session(key)["username"] == "alice"
    code = post(server, "/keys/link_code", bob).json()["code"]
    taken = post(server, "/door/link", ticket=other_ticket, code=code)
    assert error(taken) == (409, "key_taken"), "the key is alice's: bob cannot take it"
    assert error(claim(server, third_ticket, "mallory")) == (400, "invalid_ticket")
    assert door.session(key)["username"] == "alice"


def test_wrong_codes_use_up_the_ticket(server: Server) -> None:
    door = Door(server)
    alice = register(server.url, "alice")
    code = post(server, "/keys/link_code", alice).json()["code"]
    ticket = door.ticket(new_key())
    for wrong in ("AAAA-AAAA", "BBBB-BBBB", "CCCC-CCCC", "DDDD-DDDD", "EEEE-EEEE"):
        assert error(post(server, "/door/link", ticket=ticket, code=wrong)) == (400, "invalid_code")
    assert error(post(server, "/door/link", ticket=ticket, code=code)) == (400, "invalid_ticket")
    assert post(server, "/door/link", ticket=door.ticket(new_key()), code=code).status_code == 200


def test_expired_tickets_and_codes_are_refused(server: Server) -> None:
    door = Door(server)
    alice = register(server.url, "alice")
    code = post(server, "/keys/link_code", alice).json()["code"]
    ticket = door.ticket(new_key())
    accounts_file = server.data_dir / "_accounts.sqlite3"
    conn = sqlite3.connect(accounts_file)
    conn.execute("UPDATE door_tickets SET expires_at = 1")  # ten minutes are over
    conn.commit()
    conn.close()
    assert error(claim(server, ticket, "carol")) == (400, "invalid_ticket")
    ticket = door.ticket(new_key())
    conn = sqlite3.connect(accounts_file)
    conn.execute("UPDATE link_codes SET expires_at = 1")
    conn.commit()
    conn.close()
    assert error(post(server, "/door/link", ticket=ticket, code=code)) == (400, "invalid_code")
    stored = sqlite3.connect(accounts_file)
    rows = stored.execute("SELECT ticket_hash FROM door_tickets").fetchall()
    stored.close()
    assert all(ticket not in row[0] for row in rows), "tickets are kept as their hash only"


def test_removing_a_key_ends_its_sessions(server: Server) -> None:
    door, laptop, desk = Door(server), new_key(), new_key()
    claim(server, door.ticket(laptop), "alice")
    via_laptop = door.session(laptop)["token"]
    code = post(server, "/keys/link_code", via_laptop).json()["code"]
    via_desk = post(server, "/door/link", ticket=door.ticket(desk), code=code).json()["token"]
    removed = post(server, "/keys/remove", via_laptop, fingerprint=fingerprint(desk))
    assert removed.json() == {"success": True}
    assert http.get(f"{server.url}/me", headers=bearer(via_desk)).status_code == 401
    assert http.get(f"{server.url}/me", headers=bearer(via_laptop)).status_code == 200
    assert door.session(desk)["known"] is False
    assert error(post(server, "/keys/remove", via_laptop, fingerprint=fingerprint(desk))) == (
        404,
        "unknown_key",
    )
    bad = post(server, "/keys/remove", via_laptop, fingerprint="MD5:aa:bb")
    assert error(bad) == (400, "invalid_field")
    # the last way in stays, until there is a password
    last = post(server, "/keys/remove", via_laptop, fingerprint=fingerprint(laptop))
    assert error(last) == (409, "last_key")
    assert door.session(laptop)["known"] is True
    changed = post(server, "/change_password", via_laptop, password="", new_password="a long one")
    assert changed.status_code == 200, changed.text
    assert (
        post(server, "/keys/remove", via_laptop, fingerprint=fingerprint(laptop)).status_code == 200
    )
    # the laptop's own sessions ended with its key; the password still lets alice in
    assert http.get(f"{server.url}/me", headers=bearer(via_laptop)).status_code == 401
    login = post(server, "/login", username="alice", password="a long one")
    assert login.status_code == 200
    assert keys_of(server, login.json()["token"]) == []


def test_another_users_key_is_unknown_to_me(server: Server) -> None:
    door, key = Door(server), new_key()
    claim(server, door.ticket(key), "alice")
    bob = register(server.url, "bob")
    reply = post(server, "/keys/remove", bob, fingerprint=fingerprint(key))
    assert error(reply) == (404, "unknown_key")
    assert door.session(key)["username"] == "alice"


def test_an_account_without_a_password_sets_one_only_once(server: Server) -> None:
    door = Door(server)
    token = claim(server, door.ticket(new_key()), "carol").json()["token"]
    wrong = post(server, "/change_password", token, password="guess", new_password="carol's own")
    assert error(wrong) == (403, "wrong_password")
    assert post(server, "/change_password", token, password="", new_password="carol's own").json()[
        "success"
    ]
    again = post(server, "/change_password", token, password="", new_password="someone else")
    assert error(again) == (403, "wrong_password"), "it has a password now"
    assert post(server, "/login", username="carol", password="carol's own").status_code == 200
    alice = register(server.url, "alice")
    empty = post(server, "/change_password", alice, password="", new_password="no current")
    assert error(empty) == (403, "wrong_password")


def test_deleting_an_account_removes_its_keys(server: Server) -> None:
    door, key = Door(server), new_key()
    token = claim(server, door.ticket(key), "carol").json()["token"]
    assert post(server, "/delete_account", token, password="").json() == {"success": True}
    assert door.session(key)["known"] is False, "the key is nobody's now"
    conn = sqlite3.connect(server.data_dir / "_accounts.sqlite3")
    left = conn.execute("SELECT count(*) FROM ssh_keys").fetchone()[0]
    conn.close()
    assert left == 0
    assert error(claim(server, door.ticket(key), "carol")) == (409, "username_taken")


def _blob(*fields: bytes) -> str:
    return base64.b64encode(b"".join(len(f).to_bytes(4, "big") + f for f in fields)).decode()


ED = b"ssh-ed25519"
BAD_KEYS = {
    "empty": "",
    "no data": "ssh-ed25519",
    "not base64": "ssh-ed25519 AAAA$$$$",
    "bad padding": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI",
    "unsupported type": f"ssh-dss {_blob(b'ssh-dss', b'x')}",
    "type mismatch": f"ssh-rsa {_blob(ED, b'k' * 32)}",
    "short ed25519": f"ssh-ed25519 {_blob(ED, b'k' * 31)}",
    "trailing bytes": f"ssh-ed25519 {_blob(ED, b'k' * 32, b'extra')}",
    "cut short": "ssh-ed25519 " + _blob(ED, b"k" * 32)[:-8],
    "length past the end": "ssh-ed25519 " + base64.b64encode(b"\xff\xff\xff\xff").decode(),
    "wrong curve": "ecdsa-sha2-nistp256 "
    + _blob(b"ecdsa-sha2-nistp256", b"nistp384", b"\x04" + b"p" * 64),
    "compressed point": "ecdsa-sha2-nistp256 "
    + _blob(b"ecdsa-sha2-nistp256", b"nistp256", b"\x02" + b"p" * 32),
    "two lines": f"{VECTOR}\n{VECTOR}",
    "control character in the comment": VECTOR + "\x1b[31m",
    "far too long": "ssh-ed25519 " + "A" * 9000,
}


@pytest.mark.parametrize("name", sorted(BAD_KEYS))
def test_keys_are_read_strictly(server: Server, name: str) -> None:
    reply = Door(server).ask(BAD_KEYS[name])
    assert error(reply) in ((400, "invalid_field"),), reply.text
    assert reply.json()["message"]


def test_rsa_keys_need_1024_bits_and_every_kind_gets_openssh_fingerprints(server: Server) -> None:
    door = Door(server)
    small = asyncssh.generate_private_key("ssh-rsa", key_size=1024)
    numbers = (b"ssh-rsa", b"\x01\x00\x01", b"\x00" + b"\xc3" * 64)  # a 512-bit modulus
    assert error(door.ask(f"ssh-rsa {_blob(*numbers)}")) == (400, "invalid_field")
    assert door.session(small.export_public_key().decode())["known"] is False
    kinds = ("ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521")
    token = register(server.url, "alice")
    for kind in kinds:
        line = new_key(kind)
        code = post(server, "/keys/link_code", token).json()["code"]
        assert post(server, "/door/link", ticket=door.ticket(line), code=code).status_code == 200
    code = post(server, "/keys/link_code", token).json()["code"]
    assert post(server, "/door/link", ticket=door.ticket(VECTOR), code=code).status_code == 200
    listed = {k["fingerprint"]: k for k in keys_of(server, token)}
    assert (
        VECTOR_FINGERPRINT in listed and listed[VECTOR_FINGERPRINT]["comment"] == "vector@pairchat"
    )
    assert {k["type"] for k in listed.values()} == {*kinds}
