"""Code reads as code (issue 22 item 1): fenced blocks are highlighted and folded to the
pane, `inline code` is marked, nothing else is interpreted, `y` copies just the code,
and a pasted block keeps its indentation. The snapshot is the picture to check by eye."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from rich.cells import cell_len
from textual.app import App, ComposeResult

from tests.support import LiveServer
from tui.client.models import Message
from tui.code_blocks import CODE, CODE_MORE, FENCE, TEXT, code_texts, fences, layout
from tui.core.conversation import Conversation
from tui.widgets.chat_log import ChatLog
from tui.widgets.composer import Composer

from .conftest import (
    FIXED_NOW,
    app_for,
    befriend,
    fixed_clock,
    open_chat,
    paste,
    settled,
    stored,
    wait_for,
)

NOW = FIXED_NOW.int_timestamp
HOSTILE = "```python\nx = '[bold]x[/bold]'  # \x1b[2J\x1b]52;c;cHduZWQ=\x07 gone?\n```"
CODE_MESSAGE = (
    "the fix, see `retry()`:\n"
    "```python\n"
    "def retry(times: int) -> None:\n"
    "    for attempt in range(times):  # a comment long enough to be folded at the edge\n"
    "        print('[bold]not markup[/bold]', attempt)\n"
    "```\n"
    "ok?"
)
MESSAGES = [
    Message(1, "bob", CODE_MESSAGE, NOW - 300),
    Message(2, "alice", "```brainfsck\n+[->+<]  [red]plain[/red]\n```", NOW - 200),
    Message(3, "bob", HOSTILE, NOW - 100),
    Message(4, "bob", "no code here, just `one` and a `` ` `` odd tick", NOW - 50),
]


class CodeLogHarness(App[None]):
    def __init__(self, compact: bool = False) -> None:
        super().__init__()
        self.compact = compact

    def compose(self) -> ComposeResult:
        yield ChatLog("alice", clock=fixed_clock, compact=self.compact, id="log")

    def on_mount(self) -> None:
        log = self.query_one(ChatLog)
        chat = Conversation("bob", "alice")
        chat.merge(MESSAGES)
        chat.loaded = True
        log.show(chat)
        log.loaded()
        log.focus()


async def harness_ready(pilot: Any) -> None:
    await settled(pilot.app)


# -- the pure part ------------------------------------------------------------------------
def test_a_fence_with_a_language_or_none_and_an_unclosed_one_runs_to_the_end() -> None:
    text = "a\n```python\nx = 1\n```\nb\n```\n  y\n"
    found = fences(text)
    assert [f.language for f in found] == ["python", ""]
    assert found[0].close is not None and found[1].close is None
    assert code_texts(text) == ["x = 1", "  y\n"]
    assert fences("``` not a fence: text after ``` on the line") == []


def test_code_is_folded_by_cells_never_wrapped_at_spaces() -> None:
    line = "    " + "x" * 30 + " " + "\u4e2d" * 10
    text = f"```\n{line}\n```"
    rows, kinds = layout(text, 20, fences(text))
    assert kinds == [FENCE, CODE, CODE_MORE, CODE_MORE, CODE_MORE, FENCE]  # 55 cells at 18
    assert text[rows[1][0] : rows[1][1]].startswith("    x")  # indentation kept
    assert "".join(text[a:b] for (a, b), k in zip(rows, kinds, strict=True) if k >= CODE) == line
    assert all(cell_len(text[a:b]) <= 18 for a, b in rows)  # 20 minus the gutter
    prose, prose_kinds = layout("just words " * 5, 20, [])
    assert set(prose_kinds) == {TEXT} and len(prose) > 1


# -- the chat view ----------------------------------------------------------------------
def _rows_of(log: ChatLog, message_id: int) -> list[Any]:
    block = log.chat_layout.block_of_message(message_id)
    assert block is not None
    return log._strips(block, log._content_width())


@pytest.mark.anyio
async def test_a_code_block_is_highlighted_folded_and_its_markup_and_escapes_stay_inert() -> None:
    app = CodeLogHarness()
    async with app.run_test(size=(80, 24)) as pilot:
        await settled(app)
        log = app.query_one(ChatLog)
        width = log._content_width()
        strips = _rows_of(log, 1)
        text = [strip.text for strip in strips]
        assert text[1] == "  the fix, see `retry()`:"
        assert text[2].rstrip() == "  ```python"
        assert text[3].startswith("  \u2502 def retry(times: int) -> None:")
        assert text[4].startswith("  \u2502     for attempt in range(times):")
        assert text[5].startswith("  \u21aa ")  # the folded rest of the long line
        assert "print('[bold]not markup[/bold]', attempt)" in text[6]
        assert all(strip.cell_length <= width for strip in strips)
        # Highlighted: the keyword `def` has a colour of its own, unlike the name after it.
        code_row = strips[3]
        colours = {seg.text.strip(): seg.style.color for seg in code_row if seg.style}
        assert colours.get("def") is not None and colours["def"] != colours.get("retry")
        assert all(
            seg.style and seg.style.bgcolor for seg in list(code_row)[1:]
        )  # after the indent
        # `inline code` is marked.
        inline = [seg for seg in strips[1] if seg.text == "`retry()`"]
        assert inline and inline[0].style is not None and inline[0].style.bgcolor is not None
        # An unknown language is plain: one colour, the markup as typed.
        plain = _rows_of(log, 2)
        assert "+[->+<]  [red]plain[/red]" in plain[2].text
        assert all(seg.style is None or seg.style.color is None for seg in plain[2])
        # Escape sequences inside a block are shown, never sent to the terminal.
        hostile = [strip.text for strip in _rows_of(log, 3)]
        assert any("x = '[bold]x[/bold]'  # ^[[2J^[]52;c;cHduZWQ=^G gone?" in t for t in hostile)
        for strip in _rows_of(log, 3):
            for seg in strip:
                assert "\x1b" not in seg.text and "\x07" not in seg.text
        await pilot.pause()


@pytest.mark.anyio
async def test_compact_layout_puts_the_code_under_the_name() -> None:
    app = CodeLogHarness(compact=True)
    async with app.run_test(size=(60, 20)):
        await settled(app)
        log = app.query_one(ChatLog)
        log.seen_id = 2  # my message 2, seen: its status must show, though it ends in code
        log._cache.clear()
        text = [strip.text.rstrip() for strip in _rows_of(log, 1)]
        assert text[0].endswith("bob:")
        assert "seen" in _rows_of(log, 2)[0].text
        assert text[2] == "      ```python"
        assert text[3].startswith("      \u2502 def retry")
        assert all(strip.cell_length <= log._content_width() for strip in _rows_of(log, 1))


@pytest.mark.anyio
async def test_y_copies_just_the_code_and_c_the_whole_message_as_typed() -> None:
    app = CodeLogHarness()
    async with app.run_test(size=(80, 24)) as pilot:
        await settled(app)
        log = app.query_one(ChatLog)
        log.select(3)
        await pilot.press("y")
        assert app.clipboard == "x = '[bold]x[/bold]'  # \x1b[2J\x1b]52;c;cHduZWQ=\x07 gone?"
        await pilot.press("c")
        assert app.clipboard == HOSTILE
        log.select(4)
        await pilot.press("y")
        assert app.clipboard == HOSTILE  # no block: nothing copied, and the user told
        await pilot.pause()
        assert any("No code block" in str(n.message) for n in app._notifications)


def test_snapshot_code_block(snap_compare: Any) -> None:
    assert snap_compare(CodeLogHarness(), terminal_size=(80, 24), run_before=harness_ready)


# -- the composer ---------------------------------------------------------------------------
PASTED = "    indented first line\n\tdef f():\n\t\treturn 1  \n\n  end"


@pytest.mark.anyio
async def test_a_pasted_block_keeps_its_indentation_and_is_sent_as_typed(
    server: LiveServer, users: dict[str, str], tmp_path: Path
) -> None:
    befriend(server, users, "alice", "bob")
    app = app_for(server.url, tmp_path, user="alice", token=users["alice"])
    async with app.run_test(size=(80, 24)) as pilot:
        log = await open_chat(pilot, app, "bob")
        composer = app.screen.query_one(Composer)
        await paste(pilot, f"```\n{PASTED}\n```")
        assert composer.text == f"```\n{PASTED}\n```"
        await pilot.press("enter")
        await wait_for(pilot, lambda: stored(server, users, "alice", "bob"), "sent")
        await wait_for(pilot, lambda: log.message_ids, "shown")
        rows = [line for line in log.text_lines() if "\u2502" in line]
        assert rows[:3] == [
            "  \u2502     indented first line",
            "  \u2502     def f():",
            "  \u2502         return 1",
        ]
    assert stored(server, users, "alice", "bob") == [f"```\n{PASTED}\n```"]


@pytest.mark.anyio
async def test_a_paste_with_carriage_returns_as_terminals_send_it_keeps_lines_and_indents(
    server: LiveServer, users: dict[str, str], tmp_path: Path
) -> None:
    """tmux and xterm send a pasted newline as CR: the lines and their indentation stay."""
    befriend(server, users, "alice", "bob")
    app = app_for(server.url, tmp_path, user="alice", token=users["alice"])
    async with app.run_test(size=(80, 24)) as pilot:
        await open_chat(pilot, app, "bob")
        composer = app.screen.query_one(Composer)
        await paste(pilot, "```\rif x:\r    y()\r\tz()\r```")
        assert composer.text == "```\nif x:\n    y()\n\tz()\n```"
