# ruff: noqa: RUF001, RUF002, RUF003  (look-alike letters are what this file is about)
"""Names that read alike are the same name (UTS #39 skeletons), and names show something.

A display name that reads like another user's display name or username (a Cyrillic
``а``, IPA ``ɑ``, Cherokee ``Ꭺ``, ``rn`` for ``m``, ``0`` for ``o``) is 409
``display_name_taken`` at registration and at the SSH door's claim, and a username
that reads like another user's display name or username is 409 ``username_taken``;
invisible and
filler characters (the Hangul fillers, the blank Braille pattern, zero-width and
bidi controls) are 400. One's own username as display name stays fine. In the TUI's
friend list, two friends whose names read alike show whose each is.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from backend.storage.accounts_schema import ACCOUNTS_FILE
from tests.support import Server, http, register
from tests.test_door_identity import Door, claim, new_key
from tui.client.models import Friend

pytestmark = pytest.mark.both_tiers  # in-process (fast tier) and live

LOOK_ALIKES = [
    "аlice",
    "ɑlice",
    "Ꭺlice",
    "ΑLICE",
    "ａｌｉｃｅ",
]  # Cyrillic, IPA, Cherokee, Greek, full-width
INVISIBLE = [
    "alice\u3164",  # Hangul filler: "alice" and two blank columns
    "\u2800alice",  # blank Braille pattern
    "\u3164",  # nothing but a filler
    "\u115f\u1160",
    "\uffa0bob",
    "al\u200bice",  # zero-width space
    "ali\u200dce",  # zero-width joiner
    "\u202ealice",  # right-to-left override
    "alice\u2066",  # bidi isolate
    "a\u00adlice",  # soft hyphen
    "alice\u3000",  # ideographic space
    "\ufeffalice",
]


def try_register(server: Server, username: str, display_name: str) -> tuple[int, str]:
    reply = http.post(
        f"{server.url}/register",
        data={"username": username, "password": "long enough", "display_name": display_name},
    )
    return reply.status_code, reply.json().get("error", "")


@pytest.mark.parametrize("shown", LOOK_ALIKES)
def test_a_look_alike_of_another_username_is_refused(server: Server, shown: str) -> None:
    register(server.url, "alice")
    assert try_register(server, "mallory", shown) == (409, "display_name_taken")


@pytest.mark.parametrize("shown", LOOK_ALIKES)
def test_a_look_alike_of_another_display_name_is_refused(server: Server, shown: str) -> None:
    assert try_register(server, "bob", "Alice")[0] == 201
    assert try_register(server, "mallory", shown) == (409, "display_name_taken")


@pytest.mark.parametrize(
    ("existing", "shown"),
    [("mary", "rnary"), ("bob0", "BOBO"), ("a1ex", "Alex"), ("rnary", "Mary")],
)
def test_usernames_with_letters_the_skeleton_maps(
    server: Server, existing: str, shown: str
) -> None:
    register(server.url, existing)
    assert try_register(server, "mallory", shown) == (409, "display_name_taken")


@pytest.mark.parametrize("shown", ["alice", "Alice", *LOOK_ALIKES])
def test_a_username_that_reads_like_another_users_display_name_is_refused(
    server: Server, shown: str
) -> None:
    """Before: with bob's display name "alice" (in any script), a new user could still
    take the username alice, and the two read alike in every friend list."""
    assert try_register(server, "bob", shown)[0] == 201
    reply = http.post(f"{server.url}/register", data={"username": "alice", "password": "x" * 8})
    assert (reply.status_code, reply.json()["error"]) == (409, "username_taken")
    assert reply.json()["message"] == "the username 'alice' reads like another user's name"
    assert try_register(server, "alice-b", "")[0] == 201  # a different name is fine


@pytest.mark.parametrize(
    ("existing", "new"),
    [("mary", "rnary"), ("rnary", "mary"), ("alice", "a1ice"), ("bob0", "bobo"), ("oslo", "0s1o")],
)
def test_a_username_that_reads_like_another_username_is_refused(
    server: Server, existing: str, new: str
) -> None:
    register(server.url, existing)
    assert try_register(server, new, "") == (409, "username_taken")


def test_ones_own_display_name_may_read_like_ones_username(server: Server) -> None:
    assert try_register(server, "alice", "аlice")[0] == 201  # Cyrillic а, her own name
    assert try_register(server, "m0rris", "Morris")[0] == 201  # 0 for o, her own
    assert try_register(server, "morris", "")[0] == 409  # but not another's


def test_the_ssh_doors_claim_refuses_a_username_that_reads_like_another(server: Server) -> None:
    assert try_register(server, "bob", "Ꭺlice")[0] == 201
    door = Door(server)
    taken = claim(server, door.ticket(new_key()), "alice")
    assert (taken.status_code, taken.json()["error"]) == (409, "username_taken")
    assert "reads like another user's name" in taken.json()["message"]
    assert claim(server, door.ticket(new_key()), "alicia").status_code == 201


def test_the_username_skeleton_is_the_one_icu_makes() -> None:
    """``USERNAME_SKELETON`` (compared in SQL) is every ASCII letter or digit whose
    skeleton is not itself, and what it reads as."""
    import string

    from backend.core.names import USERNAME_SKELETON, name_key

    changed = {c: name_key(c) for c in string.ascii_lowercase + string.digits + "-"}
    assert {c: k for c, k in changed.items() if c != k} == dict(USERNAME_SKELETON)


@pytest.mark.parametrize("shown", INVISIBLE)
def test_invisible_and_filler_characters_are_refused(server: Server, shown: str) -> None:
    assert try_register(server, "mallory", shown) == (400, "invalid_field")


def test_own_username_and_ordinary_names_stay_fine(server: Server) -> None:
    assert try_register(server, "alice", "аlice")[0] == 201  # her own name, any script
    assert try_register(server, "mary", "Mary")[0] == 201
    for username, shown in [("zoe", "Zoë"), ("ann", "Ann-Marie O'Neil"), ("li", "李小龙")]:
        assert try_register(server, username, shown)[0] == 201
    assert try_register(server, "bob", "Bob Smith")[0] == 201
    assert try_register(server, "rob", "bob  SMITH") == (409, "display_name_taken")


def test_emoji_with_their_selectors_and_joiners_stay_fine(server: Server) -> None:
    """A variation selector after a symbol is drawn as part of the emoji (it was refused
    as invisible: ❤️ is a heart and U+FE0F). Joined emoji (U+200D) stay refused, as
    before, by the rule that a display name holds printable characters only."""
    for username, shown in [
        ("hearts", "Kim \u2764\ufe0f"),
        ("wave", "Lee \U0001f44b\U0001f3fd"),
        ("flag", "Ana \U0001f3f3\ufe0f"),
    ]:
        assert try_register(server, username, shown)[0] == 201, shown
    assert try_register(server, "joined", "ann\u200dbob") == (400, "invalid_field")
    assert try_register(server, "leading", "\ufe0fann") == (400, "invalid_field")


def test_the_ssh_doors_claim_has_the_same_rules(server: Server) -> None:
    register(server.url, "alice")
    door = Door(server)
    assert claim(server, door.ticket(new_key()), "mallory", display_name="ɑlice").status_code == 409
    filler = claim(server, door.ticket(new_key()), "mallory", display_name="\u3164")
    assert (filler.status_code, filler.json()["error"]) == (400, "invalid_field")
    register(server.url, "mary")
    assert claim(server, door.ticket(new_key()), "eve", display_name="rnary").status_code == 409
    assert claim(server, door.ticket(new_key()), "carol", display_name="Сarol").status_code == 201


def test_keys_stored_before_the_skeleton_are_recomputed(tmp_path: Path) -> None:
    """An accounts file of version 4 keeps its display keys in the old form; opening it
    brings them to the skeleton, so an old ``аlice`` still blocks a new ``alice``."""
    from backend.core.usernames import display_key
    from backend.storage.accounts import AccountStore

    store = AccountStore(tmp_path)
    store.add_user("bob", "аlice", "", 0)
    store.close()
    with sqlite3.connect(tmp_path / ACCOUNTS_FILE) as conn:
        conn.execute("UPDATE users SET display_key = 'аlice'")  # as version 4 wrote it
        conn.execute("PRAGMA user_version = 4")
    store = AccountStore(tmp_path)
    with sqlite3.connect(tmp_path / ACCOUNTS_FILE) as conn:
        assert (
            conn.execute("SELECT display_key FROM users").fetchone()[0]
            == display_key("alice")
            == "alice"
        )
    store.close()


def test_the_friend_list_says_whose_a_close_name_is() -> None:
    from tui.widgets.friend_list import close_names

    friends = [
        Friend("alice", "Alice"),
        Friend("mallory", "Аlice"),  # Cyrillic А
        Friend("bob", "Bob"),
        Friend("carol", ""),
    ]
    assert close_names(friends) == {"alice", "mallory"}
    assert close_names([Friend("alice", "Alice"), Friend("bob", "Bob")]) == set()
    assert close_names([Friend("alice", ""), Friend("mallory", "ɑlice")]) == {"mallory"}


def test_the_tui_says_why_a_look_alike_username_was_refused(server: Server) -> None:
    """Before: the TUI's fixed sentence for username_taken ("That username is taken")
    hid the reason when nobody had that exact username."""
    from tui.client.errors import describe
    from tui.client.http import ApiError

    assert try_register(server, "bob", "alice")[0] == 201
    reply = http.post(f"{server.url}/register", data={"username": "alice", "password": "x" * 8})
    body = reply.json()
    said = describe(ApiError(reply.status_code, body["error"], body["message"]))
    assert said == "The username 'alice' reads like another user's name. Choose another."
    taken = describe(ApiError(409, "username_taken", "the username 'bob' is taken"))
    assert taken == "That username is taken. Choose another, or sign in."
