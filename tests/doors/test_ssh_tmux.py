"""The real OpenSSH client, in tmux at 80x24, against the SSH door and the real API.

As a user meets it: ``ssh -p PORT 127.0.0.1`` with a fresh key opens pairchat;
the user joins the key to their password account with a one-time code, reads
and sends, sees a message arrive live, resizes the terminal, quits with Ctrl+Q
and is back at the shell with the terminal as it was.
tmux runs on a socket of the test's own; only that tmux server is killed.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.support import ServerProcess, bearer, http
from tui.client.blocking import BlockingClient

from .conftest import (
    FIRST_SCREEN,
    Door,
    Tmux,
    group_members,
    new_session,
    ssh_command,
    tty_size,
    users_on,
    wait_until,
)


def test_ssh_in_a_terminal_sign_in_chat_live_resize_and_quit(
    ssh_door: Door, api: ServerProcess, new_key: Callable[[str], Path], tmux: Tmux
) -> None:
    tokens = users_on(api.url, "alice", "bob")
    with BlockingClient(api.url, tokens["alice"], username="alice") as alice:
        alice.add_friend("bob")
    bob = BlockingClient(api.url, tokens["bob"], username="bob")
    bob.send("alice", "hello from bob")
    key = new_key("alice-laptop")

    before = set(ssh_door.sessions())
    tmux.open(ssh_command(ssh_door, key))
    screen = tmux.wait_for(FIRST_SCREEN)
    pid = new_session(ssh_door, before)
    lines = screen.splitlines()
    assert len(lines) == 24 and all(len(line) <= 80 for line in lines)
    assert tty_size(pid) == (80, 24)
    assert "Quit" in lines[-1], "the footer, on the last row"

    # alice has a password account: her new key joins it with a one-time code.
    code = http.post(f"{api.url}/keys/link_code", headers=bearer(tokens["alice"]))
    assert code.status_code == 200, code.text
    tmux.link_with_code(code.json()["code"])
    tmux.wait_for("connected")
    tmux.type("Enter")  # open bob's chat
    tmux.wait_for("hello from bob")
    tmux.chat_round_trip("alice", bob, "typed over ssh", "live from bob")

    tmux("resize-window", "-t", "pane", "-x", "100", "-y", "30")
    wait_until(lambda: tty_size(pid) == (100, 30), "the TUI's terminal resized")
    wait_until(lambda: len(tmux.screen().splitlines()) == 30, "drawn at 30 rows")
    wait_until(lambda: "Quit" in tmux.screen().splitlines()[-1], "the footer on the new last row")

    tmux.type("C-q")
    tmux.wait_for("EXITED 0")
    # Restored: the alternate screen left, no mouse reporting. (What tmux 3.3 then
    # shows of the main screen after a resize in the alternate screen is its own.)
    assert tmux.flag("alternate_on") == "0"
    assert tmux.flag("mouse_any_flag") == "0" and tmux.flag("mouse_all_flag") == "0"
    wait_until(lambda: not group_members(pid), "the session's processes gone")
    bob.close()


def test_closing_the_terminal_ends_the_session(
    ssh_door: Door, new_key: Callable[[str], Path], tmux: Tmux
) -> None:
    before = set(ssh_door.sessions())
    tmux.open(ssh_command(ssh_door, new_key("closer")))
    tmux.wait_for(FIRST_SCREEN)
    pid = new_session(ssh_door, before)
    tmux("kill-server")  # the terminal window is closed: ssh gets SIGHUP
    wait_until(lambda: not group_members(pid), "the session's processes gone")
