"""Search in the TUI finds a file by its name, against the real server: Ctrl+F "report"
selects a file sent with no caption, far enough back that only the server can find it,
and shows it as the log shows any file ("📎 report.pdf · size", the term marked)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import LiveServer

from .conftest import api, app_for, befriend, fill, open_chat, type_text, wait_for

pytestmark = pytest.mark.anyio

PAPERCLIP = "\U0001f4ce"


async def test_ctrl_f_finds_a_file_by_its_name(
    server: LiveServer, users: dict[str, str], tmp_path: Path
) -> None:
    befriend(server, users, "alice", "bob")
    source = tmp_path / "report.pdf"
    source.write_bytes(b"%PDF-1.7 the numbers")
    with api(server.url, "bob", users["bob"]) as bob:
        sent = bob.send_file("alice", source)
    fill(server, users, 300, text="filler {n}")  # the file is not in the first page
    app = app_for(server.url, tmp_path / "config", user="alice", token=users["alice"])
    async with app.run_test(size=(80, 24)) as pilot:
        log = await open_chat(pilot, app, "bob")
        await wait_for(pilot, lambda: log.conversation and log.conversation.loaded, "loaded")
        assert sent.id not in log.message_ids
        await pilot.press("ctrl+f")
        await type_text(pilot, "report")
        await pilot.press("enter")
        await wait_for(pilot, lambda: log.current_match == sent.id, "the file, by its name")
        assert log.search_term == "report"
        assert any(f"{PAPERCLIP} report.pdf" in line for line in log.screen_lines())
