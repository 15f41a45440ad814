"""The SSH key is the account: the real OpenSSH client in tmux, the door and the real API.

A fresh key meets the claim screen and claims a name; the same key then signs
straight in; a second key is not that account (it gets the claim screen) until
it is linked with a one-time code the account made. The door asks the API
(``/door/session``, with the door's secret) who each key is.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.support import ServerProcess, bearer, http, register
from tui.client.blocking import BlockingClient

from .conftest import (
    DOOR_SECRET,
    Door,
    Tmux,
    group_members,
    new_session,
    ssh_command,
    tty_size,
    wait_until,
)


def public_line(key: Path) -> str:
    """The key's OpenSSH one-line form, as the door sends it (type and base64)."""
    return " ".join(Path(f"{key}.pub").read_text().split()[:2])


def account_token(door: Door, key: Path) -> str:
    """A token for the account of ``key``, asked as the door asks (a script's way in)."""
    reply = http.post(
        f"{door.api}/door/session",
        data={"public_key": public_line(key)},
        headers={"X-Pairchat-Door": DOOR_SECRET},
    )
    assert reply.status_code == 200 and reply.json()["known"] is True, reply.text
    token: str = reply.json()["token"]
    return token


def test_a_key_claims_a_name_signs_in_again_and_a_second_key_needs_a_code(
    ssh_door: Door, api: ServerProcess, new_key: Callable[[str], Path], tmux: Tmux
) -> None:
    bob = BlockingClient(api.url, register(api.url, "bob"), username="bob")
    laptop, desktop = new_key("laptop"), new_key("desktop")

    # A fresh key: the claim screen, at 80x24.
    before = set(ssh_door.sessions())
    tmux.open(ssh_command(ssh_door, laptop))
    screen = tmux.wait_for("This SSH key is new here")
    pid = new_session(ssh_door, before)
    lines = screen.splitlines()
    assert len(lines) == 24 and all(len(line) <= 80 for line in lines)
    assert tty_size(pid) == (80, 24)
    tmux.type("-l", "zoe")
    tmux.wait_for("zoe")
    tmux.type("Tab")
    tmux.wait_focused("optional", "the display name field focused")
    tmux.type("-l", "Zoe Zed")
    tmux.type("Enter")
    tmux.wait_for("zoe (Zoe Zed) · ● connected")

    # Chat: zoe befriends bob (as a script would, with the account's token); live both ways.
    with BlockingClient(api.url, account_token(ssh_door, laptop), username="zoe") as zoe:
        zoe.add_friend("bob")
    bob.send("zoe", "hello zoe")
    tmux.wait_for("@bob")
    tmux.type("Enter")
    tmux.wait_for("hello zoe")
    tmux.chat_round_trip("zoe", bob, "hi from the ssh door", "live to zoe")
    tmux.type("C-q")
    tmux.wait_for("EXITED 0")
    wait_until(lambda: not group_members(pid), "the session gone")
    tmux("kill-server")

    # The same key again: straight in, no password, no claim.
    tmux.open(ssh_command(ssh_door, laptop))
    tmux.wait_for("zoe (Zoe Zed) · ● connected")
    assert "This SSH key is new here" not in tmux.screen()
    tmux.type("C-q")
    tmux.wait_for("EXITED 0")
    tmux("kill-server")

    # A second key is not zoe: it gets the claim screen, until linked with zoe's code.
    tmux.open(ssh_command(ssh_door, desktop))
    tmux.wait_for("This SSH key is new here")
    reply = http.post(f"{api.url}/keys/link_code", headers=bearer(account_token(ssh_door, laptop)))
    assert reply.status_code == 200, reply.text
    tmux.link_with_code(reply.json()["code"])
    tmux.wait_for("zoe (Zoe Zed) · ● connected")
    tmux.type("C-q")
    tmux.wait_for("EXITED 0")
    tmux("kill-server")

    # Now the second key signs straight in too; zoe has two keys.
    tmux.open(ssh_command(ssh_door, desktop))
    tmux.wait_for("zoe (Zoe Zed) · ● connected")
    tmux.type("C-q")
    tmux.wait_for("EXITED 0")
    listed = http.get(f"{api.url}/keys", headers=bearer(account_token(ssh_door, laptop)))
    assert len(listed.json()["keys"]) == 2
    bob.close()
