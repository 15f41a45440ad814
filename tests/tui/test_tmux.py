"""The real ``pairchat`` program in tmux (80x24) against the real server, as a user drives it.

tmux runs on its own socket, so the user's tmux sessions are never touched, and
only the tmux server each test started is killed. Keys go through ``send-keys``
(a whole burst in one call, as a fast typist or an unbracketed paste delivers
them) and ``paste-buffer -p`` (a bracketed paste).
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support import ServerProcess, register

from .conftest import PASSWORD, api

PROGRAM = Path(sys.executable).with_name("pairchat")


class Tmux:
    def __init__(self, socket: str) -> None:
        self.socket = socket

    def run(self, *args: str) -> str:
        done = subprocess.run(
            ["tmux", "-L", self.socket, *args], capture_output=True, text=True, check=False
        )
        return done.stdout

    def start(self, name: str, command: str, size: tuple[int, int] = (80, 24)) -> None:
        width, height = size
        self.run("new-session", "-d", "-s", name, "-x", str(width), "-y", str(height), command)

    def screen(self, name: str = "smoke") -> str:
        return self.run("capture-pane", "-p", "-t", name)

    def keys(self, *keys: str, name: str = "smoke") -> None:
        self.run("send-keys", "-t", name, *keys)

    def paste(self, text: str, name: str = "smoke") -> None:
        self.run("set-buffer", "-b", "p", text)
        self.run("paste-buffer", "-p", "-d", "-b", "p", "-t", name)

    def flag(self, fmt: str, name: str = "smoke") -> str:
        return self.run("display", "-p", "-t", name, fmt).strip()

    def wait_for(self, text: str, name: str = "smoke", timeout: float = 20.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen(name)
            if text in screen:
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} never appeared; the screen was:\n{screen}")
            time.sleep(0.1)


@pytest.fixture
def tmux(tmp_path: Path) -> Iterator[Tmux]:
    session = Tmux(f"pairchat-test-{os.getpid()}-{tmp_path.name}")
    yield session
    session.run("kill-server")


def client_command(
    url: str, config: Path, pid_file: Path | None = None, *, signed_in: bool = True, **env: str
) -> str:
    """The shell command that runs the real client as alice (or, with ``signed_in=False``,
    on an empty sign-in screen), then says EXITED."""
    assert PROGRAM.exists(), "the console script is installed"
    variables = {
        "PAIRCHAT_CONFIG_DIR": str(config),
        "TERM": "xterm-256color",
        **({"PAIRCHAT_PASSWORD": PASSWORD} if signed_in else {}),
        **env,
    }
    exports = " ".join(shlex.quote(f"{key}={value}") for key, value in variables.items())
    run = f"env {exports} {shlex.quote(str(PROGRAM))} --server {url}"
    if signed_in:
        run += " --user alice"
    if pid_file is not None:  # exec: the pid written is the client's own
        run = f"sh -c {shlex.quote(f'echo $$ > {pid_file}; exec {run}')}"
    return f"{run}; echo EXITED; sleep 30"


MARKER = "marker: "
"""Starts the messages ``wait_stored`` sends to prove nothing more is on its way."""


def stored(proc: ServerProcess, users: dict[str, str]) -> list[str]:
    with api(proc.url, "bob", users["bob"]) as bob:
        return [m.text for m in bob.history("alice").messages]


def wait_stored(
    proc: ServerProcess, users: dict[str, str], count: int, tmux: Tmux, name: str = "smoke"
) -> list[str]:
    """The messages stored once ``count`` are (markers left out), and proof that nothing
    more is on its way: a marker typed in the client's open chat and sent after them.

    The client sends its outbox in order (tui/core/sending.py), so whatever it had queued
    before the marker is stored before it: "nothing more arrives" is proven by order once
    the marker is stored, not guessed from a quiet half second."""

    def messages() -> list[str]:
        return [text for text in stored(proc, users) if not text.startswith(MARKER)]

    deadline = time.monotonic() + 20
    while len(texts := messages()) < count:
        assert time.monotonic() < deadline, f"only {texts} were stored"
        time.sleep(0.1)
    marker = f"{MARKER}{time.monotonic_ns()}"
    tmux.keys("-l", marker, name=name)
    tmux.keys("Enter", name=name)
    while marker not in (texts := stored(proc, users)):
        assert time.monotonic() < deadline + 20, f"the marker never came: {texts}"
        time.sleep(0.1)
    return [text for text in texts[: texts.index(marker)] if not text.startswith(MARKER)]


@pytest.fixture
def chat_server(
    server_process: Callable[..., ServerProcess],
) -> tuple[ServerProcess, dict[str, str]]:
    proc = server_process()
    users = {name: register(proc.url, name) for name in ("alice", "bob")}
    with api(proc.url, "alice", users["alice"]) as alice:
        alice.add_friend("bob")
    with api(proc.url, "bob", users["bob"]) as bob:
        bob.send("alice", "hello from bob")
    return proc, users


def test_pairchat_in_tmux_at_80x24(
    chat_server: tuple[ServerProcess, dict[str, str]], tmux: Tmux, tmp_path: Path
) -> None:
    proc, users = chat_server
    tmux.start("smoke", client_command(proc.url, tmp_path / "cfg"))
    screen = tmux.wait_for("connected")
    assert "alice" in screen and "(1)" in screen, screen
    tmux.keys("Enter")  # open bob's chat
    tmux.wait_for("hello from bob")
    tmux.keys("-l", "typed in tmux")
    tmux.keys("Enter")
    tmux.wait_for("\u203a me")
    assert wait_stored(proc, users, 2, tmux) == ["hello from bob", "typed in tmux"]
    lines = tmux.screen().splitlines()
    assert len(lines) == 24 and all(len(line) <= 80 for line in lines)
    assert "Quit" in lines[-1] and "Send" in lines[-1], "the footer shows the composer's keys"
    tmux.keys("C-q")
    tmux.wait_for("EXITED")


def test_burst_typing_and_bracketed_paste_in_the_real_terminal(
    chat_server: tuple[ServerProcess, dict[str, str]], tmux: Tmux, tmp_path: Path
) -> None:
    proc, users = chat_server
    editor = tmp_path / "editor.sh"
    editor.write_text('#!/bin/sh\nprintf "written in the editor\\n" > "$1"\n')
    editor.chmod(0o755)
    tmux.start("smoke", client_command(proc.url, tmp_path / "cfg", EDITOR=str(editor)))
    tmux.wait_for("connected")
    tmux.keys("Enter")
    tmux.wait_for("hello from bob")

    tmux.keys("one", "Enter", "two", "Enter", "three", "Enter")  # one burst
    assert wait_stored(proc, users, 4, tmux) == ["hello from bob", "one", "two", "three"]

    tmux.paste("pasted line 1\npasted line 2\npasted line 3")
    screen = tmux.wait_for("pasted line 3")
    assert "pasted line 1" in screen and "pasted line 2" in screen
    # "a paste never sends by itself", proven by order: keys typed after it join it in the
    # box, so one message holds both; a paste that had sent itself (or its lines) would be
    # stored before, and these keys alone after it
    tmux.keys("-l", " (end)")
    tmux.wait_for("pasted line 3 (end)")
    tmux.keys("Enter")
    texts = wait_stored(proc, users, 5, tmux)
    assert texts[4:] == ["pasted line 1\npasted line 2\npasted line 3 (end)"], texts

    tmux.keys("C-e")  # compose in $EDITOR (the app suspends, then resumes)
    tmux.wait_for("written in the editor")
    tmux.keys("Enter")
    assert wait_stored(proc, users, 6, tmux)[-1] == "written in the editor"
    tmux.keys("C-q")
    tmux.wait_for("EXITED")


@pytest.mark.parametrize("signal_number", [signal.SIGTERM, signal.SIGHUP])
def test_a_signal_restores_the_terminal(
    chat_server: tuple[ServerProcess, dict[str, str]],
    tmux: Tmux,
    tmp_path: Path,
    signal_number: int,
) -> None:
    proc, _ = chat_server
    pid_file = tmp_path / "client.pid"
    tmux.start("smoke", client_command(proc.url, tmp_path / "cfg", pid_file))
    tmux.wait_for("connected")
    assert tmux.flag("#{alternate_on}") == "1", "the TUI runs in the alternate screen"
    os.kill(int(pid_file.read_text()), signal_number)
    tmux.wait_for("EXITED")
    assert tmux.flag("#{alternate_on}") == "0"
    assert tmux.flag("#{mouse_any_flag}#{mouse_button_flag}#{mouse_sgr_flag}") == "000"


def test_two_instances_sharing_a_config_folder_lose_nothing(
    chat_server: tuple[ServerProcess, dict[str, str]], tmux: Tmux, tmp_path: Path
) -> None:
    proc, users = chat_server
    config = tmp_path / "shared-cfg"
    for name in ("one", "two"):
        tmux.start(name, client_command(proc.url, config))
        tmux.wait_for("connected", name=name)
        tmux.keys("Enter", name=name)
        tmux.wait_for("hello from bob", name=name)
    proc.stop()
    for name in ("one", "two"):
        tmux.wait_for("offline", name=name)
        tmux.keys(f"offline from {name}", "Enter", name=name)
        tmux.wait_for("pending", name=name)
    for name in ("one", "two"):
        tmux.keys("C-q", name=name)
        tmux.wait_for("EXITED", name=name)
    outbox = json.loads((config / "outbox-alice.json").read_text())
    assert sorted(item["text"] for item in outbox["items"]) == [
        "offline from one",
        "offline from two",
    ]
    proc.start()
    tmux.start("three", client_command(proc.url, config))
    tmux.wait_for("connected", name="three")
    tmux.keys("Enter", name="three")  # bob's chat: where wait_stored types its marker
    tmux.wait_for("hello from bob", name="three")
    texts = wait_stored(proc, users, 3, tmux, name="three")
    assert texts[0] == "hello from bob"
    assert sorted(texts[1:]) == ["offline from one", "offline from two"]


# -- every key where the user saw it go: bursts across a focus change, Alt keys, quit --------


@pytest.fixture
def two_friends(
    chat_server: tuple[ServerProcess, dict[str, str]],
) -> tuple[ServerProcess, dict[str, str]]:
    """alice with bob (who wrote, so he is listed first) and carol (second)."""
    proc, users = chat_server
    users["carol"] = register(proc.url, "carol")
    with api(proc.url, "alice", users["alice"]) as alice:
        alice.add_friend("carol")
    return proc, users


def start_in_bobs_chat(tmux: Tmux, proc: ServerProcess, config: Path, **env: str) -> None:
    tmux.start("smoke", client_command(proc.url, config, **env))
    tmux.wait_for("connected")
    tmux.keys("Enter")
    tmux.wait_for("hello from bob")


def drafts(config: Path) -> dict[str, str]:
    path = config / "drafts-alice.json"
    return dict(json.loads(path.read_text())["drafts"]) if path.exists() else {}


def test_esc_down_enter_in_one_burst_opens_the_next_chat_and_sends_no_draft(
    two_friends: tuple[ServerProcess, dict[str, str]], tmux: Tmux, tmp_path: Path
) -> None:
    proc, users = two_friends
    start_in_bobs_chat(tmux, proc, tmp_path / "cfg")
    tmux.keys("-l", "half a thought")
    tmux.wait_for("half a thought")
    tmux.keys("Escape", "Down", "Enter")  # one burst: to the list, next friend, open it
    tmux.wait_for("\u2595 @carol")
    tmux.keys("-l", "to carol")
    tmux.wait_for("to carol")
    assert stored(proc, users) == ["hello from bob"], "the draft was not sent"
    tmux.keys("Escape", "Up", "Enter")  # and back, in one burst too
    screen = tmux.wait_for("half a thought")
    assert "\u2595 @bob" in screen
    tmux.keys("C-q")
    tmux.wait_for("EXITED")
    assert drafts(tmp_path / "cfg") == {"bob": "half a thought", "carol": "to carol"}
    assert stored(proc, users) == ["hello from bob"]


def test_f1_esc_and_words_in_one_burst_close_help_and_send_the_words(
    chat_server: tuple[ServerProcess, dict[str, str]], tmux: Tmux, tmp_path: Path
) -> None:
    """Esc then a letter reach the program as one read (ESC a): read as one Alt chord,
    which nothing binds, Help stayed open and the words were lost."""
    proc, users = chat_server
    start_in_bobs_chat(tmux, proc, tmp_path / "cfg")
    tmux.keys("F1", "Escape", "after help", "Enter")  # one burst
    assert wait_stored(proc, users, 2, tmux) == ["hello from bob", "after help"]
    tmux.keys("C-q")
    tmux.wait_for("EXITED")


def test_username_tab_password_enter_in_one_burst_signs_in(
    chat_server: tuple[ServerProcess, dict[str, str]], tmux: Tmux, tmp_path: Path
) -> None:
    proc, _ = chat_server
    tmux.start("smoke", client_command(proc.url, tmp_path / "cfg", signed_in=False))
    tmux.wait_for("Username")
    tmux.keys("alice", "Tab", PASSWORD, "Enter")  # one burst, as a password manager types
    screen = tmux.wait_for("connected")
    assert PASSWORD not in screen and "alicecorrect" not in screen
    tmux.keys("C-q")
    tmux.wait_for("EXITED")


@pytest.mark.parametrize(
    "alt_enter",
    [("M-Enter",), ("-H", "1b", "0d"), ("-H", "1b", "5b", "31", "33", "3b", "33", "75")],
    ids=["tmux-M-Enter", "ESC-CR", "CSI-u"],
)
def test_alt_enter_is_a_new_line_in_every_encoding(
    chat_server: tuple[ServerProcess, dict[str, str]],
    tmux: Tmux,
    tmp_path: Path,
    alt_enter: tuple[str, ...],
) -> None:
    proc, users = chat_server
    start_in_bobs_chat(tmux, proc, tmp_path / "cfg")
    tmux.keys("-l", "first line")
    tmux.keys(*alt_enter)
    tmux.keys("-l", "second line")
    screen = tmux.wait_for("second line")
    assert "first line" in screen
    tmux.keys("Enter")
    assert wait_stored(proc, users, 2, tmux) == ["hello from bob", "first line\nsecond line"]
    tmux.keys("C-q")
    tmux.wait_for("EXITED")


def test_alt_digit_opens_that_chat_and_types_nothing(
    two_friends: tuple[ServerProcess, dict[str, str]], tmux: Tmux, tmp_path: Path
) -> None:
    proc, users = two_friends
    start_in_bobs_chat(tmux, proc, tmp_path / "cfg")
    tmux.keys("M-2")  # from the message box: chat 2 of the list
    tmux.wait_for("\u2595 @carol")
    tmux.keys("Escape", "M-1")  # from the list: chat 1
    tmux.wait_for("\u2595 @bob")
    tmux.keys("-H", "1b", "32")  # the raw bytes of Alt+2
    tmux.wait_for("\u2595 @carol")
    tmux.keys("-l", "typed")
    tmux.wait_for("typed")
    tmux.keys("C-q")
    tmux.wait_for("EXITED")
    assert drafts(tmp_path / "cfg") == {"carol": "typed"}, "no Alt chord typed a character"
    assert stored(proc, users) == ["hello from bob"]


@pytest.mark.parametrize("stop", ["ctrl+q", "SIGTERM", "SIGHUP"])
def test_quit_right_after_typing_keeps_every_key(
    chat_server: tuple[ServerProcess, dict[str, str]], tmux: Tmux, tmp_path: Path, stop: str
) -> None:
    proc, _ = chat_server
    pid_file = tmp_path / "client.pid"
    config = tmp_path / "cfg"
    tmux.start("smoke", client_command(proc.url, config, pid_file))
    tmux.wait_for("connected")
    tmux.keys("Enter")
    tmux.wait_for("hello from bob")
    text = "the end of this draft must not be lost " * 3
    if stop == "ctrl+q":
        tmux.keys("-l", text)
        tmux.keys("C-q")  # the same instant, as a typist's last keys and the quit
    else:
        tmux.keys("-l", text)
        os.kill(int(pid_file.read_text()), getattr(signal, stop))
    tmux.wait_for("EXITED")
    assert drafts(config) == {"bob": text}


def test_dialogs_opened_and_closed_inside_one_burst_get_their_keys(
    chat_server: tuple[ServerProcess, dict[str, str]], tmux: Tmux, tmp_path: Path
) -> None:
    proc, users = chat_server
    register(proc.url, "carol")
    start_in_bobs_chat(tmux, proc, tmp_path / "cfg")
    tmux.keys("F2", "carol", "Enter")  # a dialog, its field and its Enter: one burst
    tmux.wait_for("\u2595 @carol")
    tmux.keys("F1", "q", "after help")  # Help opens and closes before the text arrives
    tmux.wait_for("after help")
    tmux.keys("Tab", "Tab", "Tab", "x")  # list, messages, back to the box: the x lands there
    tmux.wait_for("after helpx")
    # (Escape right before a letter is Alt+letter to every terminal program: not tried.)
    tmux.keys("C-q")
    tmux.wait_for("EXITED")
    assert drafts(tmp_path / "cfg") == {"carol": "after helpx"}
    with api(proc.url, "alice", users["alice"]) as alice:
        assert "carol" in {f.username for f in alice.friends().friends}


def test_a_burst_that_ends_by_leaving_the_box_draws_every_key(
    chat_server: tuple[ServerProcess, dict[str, str]], tmux: Tmux, tmp_path: Path
) -> None:
    """The box held ``abc`` but showed ``abcde`` until the next key: a burst is drawn at
    its end, and once the focus had left the box no cursor blink woke the screen."""
    proc, _ = chat_server
    start_in_bobs_chat(tmux, proc, tmp_path / "cfg")
    tmux.keys("-l", "abcdef")
    tmux.wait_for("\u258a abcdef ")
    tmux.keys("BSpace", "BSpace", "BSpace", "BTab")  # one burst; the focus goes to the messages
    tmux.wait_for("\u258a abc ", timeout=5)
    tmux.keys("C-q")
    tmux.wait_for("EXITED")
    assert drafts(tmp_path / "cfg") == {"bob": "abc"}


def test_text_from_the_editor_is_held_to_the_same_bound_and_says_so(
    chat_server: tuple[ServerProcess, dict[str, str]], tmux: Tmux, tmp_path: Path
) -> None:
    """The bound was kept for keys and pastes only: 100,000 characters written in $EDITOR
    filled the box, and the saved draft lost its tail without a word."""
    from tui.core.drafts import MAX_DRAFT

    proc, _ = chat_server
    editor = tmp_path / "editor.sh"
    editor.write_text('#!/bin/sh\nhead -c 100000 /dev/zero | tr "\\\\0" x > "$1"\n')
    editor.chmod(0o755)
    config = tmp_path / "cfg"
    start_in_bobs_chat(tmux, proc, config, EDITOR=str(editor))
    tmux.keys("C-e")
    tmux.wait_for("Text cut")
    tmux.keys("C-q")
    tmux.wait_for("EXITED")
    assert drafts(config) == {"bob": "x" * MAX_DRAFT}
