"""Ctrl+E when no editor can run: the TUI says so and stays usable, the draft intact.

QA found the real program frozen: with ``VISUAL=/nonexistent/editor`` (an SSH door
always sets one on purpose) Ctrl+E blanked the screen, keys echoed as plain text and
neither Ctrl+Q nor SIGTERM ended it — Textual's ``App.suspend()`` resumes only when
its block ends normally, and the editor's FileNotFoundError left it suspended.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import LiveServer, ServerProcess
from tui.widgets.composer import Composer

from .conftest import app_for, befriend, open_chat, screen_text, type_text, wait_for
from .test_tmux import Tmux, chat_server, start_in_bobs_chat, wait_stored

__all__ = ["chat_server"]  # a fixture of test_tmux, used here
pytestmark = pytest.mark.anyio


@pytest.fixture
def tmux(tmp_path: Path) -> Iterator[Tmux]:
    session = Tmux(f"pairchat-editor-{os.getpid()}-{tmp_path.name}")
    yield session
    session.run("kill-server")


def notice_on(screen: str) -> str:
    """The toast's words at the top right (its left edge is a half block), run together."""
    parts = [line.split("\u258c", 1)[1] for line in screen.splitlines() if "\u258c" in line]
    return " ".join(part.strip(" \u2500") for part in parts).strip()


def refused_then_sent_whole(
    chat_server: tuple[ServerProcess, dict[str, str]],
    tmux: Tmux,
    config: Path,
    editor: str,
    notice_ends: str = ".",
) -> None:
    proc, users = chat_server
    start_in_bobs_chat(tmux, proc, config, VISUAL=editor)
    tmux.keys("-l", "draft text")
    tmux.wait_for("draft text")
    tmux.keys("C-e")
    screen = tmux.wait_for("Cannot open the editor")
    assert "draft text" in screen, "the draft is still in the box"
    assert notice_on(screen).endswith(notice_ends), f"the whole notice: {notice_on(screen)!r}"
    assert tmux.flag("#{alternate_on}") == "1", "the TUI has the screen again"
    tmux.keys("-l", " and more")
    tmux.wait_for("draft text and more")
    tmux.keys("Enter")
    assert wait_stored(proc, users, 2, tmux) == ["hello from bob", "draft text and more"]
    tmux.keys("C-q")
    tmux.wait_for("EXITED")


def test_an_editor_that_does_not_exist_is_refused_and_the_draft_stays(
    chat_server: tuple[ServerProcess, dict[str, str]], tmux: Tmux, tmp_path: Path
) -> None:
    # the notice's last line shown too (a toast's height once came out a row short)
    refused_then_sent_whole(
        chat_server, tmux, tmp_path / "cfg", "/nonexistent/editor", "keeps your text."
    )


def test_an_editor_that_fails_to_start_gives_the_terminal_back(
    chat_server: tuple[ServerProcess, dict[str, str]], tmux: Tmux, tmp_path: Path
) -> None:
    """Found, but the exec fails inside the suspended block (no #! line: ENOEXEC): the
    app resumes all the same."""
    editor = tmp_path / "not-a-program"
    editor.write_bytes(b"\x7fELF\x00\x00broken")
    editor.chmod(0o755)
    refused_then_sent_whole(chat_server, tmux, tmp_path / "cfg", str(editor))


async def test_through_a_door_ctrl_e_is_not_offered_and_says_why(
    server: LiveServer, users: dict[str, str], tmp_path: Path
) -> None:
    """A door's TUI runs on the server's machine: no editor for the visitor there, so the
    footer does not show Ctrl+E, and pressing it says why and keeps the box's text."""
    befriend(server, users, "alice", "bob")
    app = app_for(server.url, tmp_path / "config", user="alice", token=users["alice"])
    app.config.local_files = False
    async with app.run_test(size=(80, 24)) as pilot:
        await open_chat(pilot, app, "bob")
        await type_text(pilot, "kept")
        assert "Editor" not in screen_text(app)[-1]
        await pilot.press("ctrl+e")
        await wait_for(
            pilot,
            lambda: any("No editor through a door" in n.message for n in app._notifications),
            "why",
        )
        assert app.screen.query_one(Composer).text == "kept"
