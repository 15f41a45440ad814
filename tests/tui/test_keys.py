"""Keys a user can find: the footer follows the focus (dialogs too), F1 and ? list every key."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import LiveServer
from tui.screens.dialogs import AddFriendDialog
from tui.screens.help import HelpScreen
from tui.screens.main import MainScreen
from tui.widgets.chat_log import ChatLog
from tui.widgets.composer import Composer
from tui.widgets.friend_list import FriendList

from .conftest import app_for, befriend, open_chat, screen_text, wait_for

pytestmark = pytest.mark.anyio


def footer(app: object) -> str:
    return screen_text(app)[-1]  # type: ignore[arg-type]


async def test_the_footer_shows_the_keys_of_what_has_focus(
    server: LiveServer, users: dict[str, str], tmp_path: Path
) -> None:
    befriend(server, users, "alice", "bob")
    app = app_for(server.url, tmp_path, user="alice", token=users["alice"])
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen), "the main screen")
        await wait_for(pilot, lambda: app.focused is app.screen.query_one(FriendList), "list")
        await pilot.pause()
        in_list = footer(app)
        assert "Open chat" in in_list and "Add friend" in in_list and "Send" not in in_list

        await open_chat(pilot, app, "bob")
        assert app.focused is app.screen.query_one(Composer)
        await pilot.pause()
        composing = footer(app)
        for hint in ("Send", "Newline", "Friends", "Help", "Quit"):
            assert hint in composing, (hint, composing)
        assert "Open chat" not in composing

        await pilot.press("escape", "tab")
        assert app.focused is app.screen.query_one(ChatLog)
        await pilot.pause()
        reading = footer(app)
        assert "Older" in reading and "Newest" in reading and "Send" not in reading

        await pilot.press("f2")
        await wait_for(pilot, lambda: isinstance(app.screen, AddFriendDialog), "a dialog")
        await pilot.pause()
        in_dialog = footer(app)
        assert "Cancel" in in_dialog and "Next unread" not in in_dialog


async def test_f1_and_question_mark_list_every_key_with_the_users_keymap(
    server: LiveServer, users: dict[str, str], tmp_path: Path
) -> None:
    befriend(server, users, "alice", "bob")
    app = app_for(server.url, tmp_path, user="alice", token=users["alice"])
    app.config.keymap = {"main.next_unread": "ctrl+u"}
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen), "the main screen")
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), "help")
        await pilot.pause()
        assert "pairchat keys" in "\n".join(screen_text(app))
        assert isinstance(app.screen, HelpScreen)
        shown = app.screen.text()
        for words in ("Send the message", "A new line", "Search", "Sign out", "refused"):
            assert words in shown, words
        assert "Ctrl+u Open the next chat with unread" in shown, "the remapped key"
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen), "closed")

        await open_chat(pilot, app, "bob")
        await pilot.press("question_mark")  # in the message box it is text
        assert app.screen.query_one(Composer).text == "?"
        await pilot.press("f1")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), "help from F1")


def keys_of(data: str) -> list[tuple[str, str | None]]:
    """What the app's terminal parser makes of ``data`` (bytes as a terminal sends them)."""
    from textual import events

    from tui.keys import TerminalKeys

    parser = TerminalKeys()
    parsed = [*parser.feed(data), *parser.feed("")]
    return [(e.key, e.character) for e in parsed if isinstance(e, events.Key)]


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ("\x1b\r", [("alt+enter", None)]),  # ESC CR: Alt+Enter on most terminals, tmux M-Enter
        ("\x1b\n", [("alt+enter", None)]),
        ("\x1b[13;3u", [("alt+enter", None)]),  # CSI u (kitty)
        ("\x1b[27;3;13~", [("alt+enter", None)]),  # xterm modifyOtherKeys
        ("\x1b[27;2;13~", [("shift+enter", None)]),
        ("\x1b1", [("alt+1", None)]),  # was "¡"
        ("\x1b0", [("alt+0", None)]),  # was "º"
        ("\x1b[49;3u", [("alt+1", None)]),
        # Esc then a letter in one read (a burst, a slow link): two keys, both kept (as
        # one Alt chord, which nothing binds, both were lost)
        ("\x1ba", [("escape", "\x1b"), ("a", "a")]),
        ("\x1bA", [("escape", "\x1b"), ("A", "A")]),
        ("\x1b.", [("escape", "\x1b"), ("full_stop", ".")]),
        ("\x1b ", [("escape", "\x1b"), ("space", " ")]),
        ("\x1b[27;3;97~", [("alt+a", None)]),  # an unambiguous Alt+a stays a chord
        # unchanged: Esc before a sequence, Alt+Backspace, word moves, plain keys
        ("\x1b\x1b[B\r", [("escape", "\x1b"), ("down", None), ("enter", "\r")]),
        ("\x1b\x7f", [("ctrl+w", None)]),
        ("\x1bb", [("ctrl+left", None)]),
        ("\x1b[A", [("up", None)]),
        ("\x1bOP", [("f1", None)]),
        ("\x1b[1;5F", [("ctrl+end", None)]),
        ("\r", [("enter", "\r")]),
        ("a\tb", [("a", "a"), ("tab", "\t"), ("b", "b")]),
    ],
)
def test_the_terminal_parser_reads_alt_chords_without_characters_and_esc_letter_as_two(
    data: str, expected: list[tuple[str, str | None]]
) -> None:
    assert keys_of(data) == expected
