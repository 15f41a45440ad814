"""Code in a message: fenced blocks and `inline code`, found and laid out by offsets.

No Textual here (Rich only), like :mod:`tui.text`. The one thing read in a
message besides its text: a line opening with three or more backticks (an
optional language after them) starts a code block, and a line of at least as
many backticks ends it (no closing line: the block runs to the end). Between
single backticks on one line is `inline code`. Nothing else is interpreted: no
markup, no escapes. Everything works on offsets into the text it is given, so the
chat view can apply highlight, search and link styles by position to the display
text (:func:`~tui.text.display_text`) and the copy key can take the code from
the text as typed.

:func:`layout` breaks a message into rows: prose wraps at spaces as before
(:func:`~tui.text.wrap`); code never does (that would eat indentation) and a
line wider than the pane is folded by cells, its continuation rows marked
(:data:`CODE_MORE`), so nothing ever runs past the pane.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from rich.cells import cell_len, chop_cells
from rich.style import Style
from rich.syntax import Syntax

from tui.text import wrap

TEXT = 0
"""A row of prose."""
FENCE = 1
"""A row holding a fence line (```` ```python ```` or ```` ``` ````), drawn as typed, dim."""
CODE = 2
"""The first row of a line of code."""
CODE_MORE = 3
"""A further row of a line of code too wide for the pane."""

GUTTER = 2
"""Cells before each code row (``│ `` or ``↪ ``): marks the block even without colour."""
THEME = "monokai"
CODE_BACKGROUND = Style(bgcolor="grey11")
INLINE_CODE = Style(color="bright_cyan", bgcolor="grey19")

_OPEN = re.compile(r" {0,3}(`{3,})[ \t]*([^`]*?)\s*")
_INLINE = re.compile(r"`[^`\n]+`")


@dataclass(frozen=True, slots=True)
class Fence:
    """A fenced code block of a text, by offsets."""

    open: tuple[int, int]
    """The opening fence line."""
    body: tuple[int, int]
    """The code: from the start of its first line to the end of its last (no final newline)."""
    close: tuple[int, int] | None
    """The closing fence line, or None (the block runs to the end of the text)."""
    language: str


def has_code(text: str) -> bool:
    """Anything here to find: the fast path for most messages."""
    return "`" in text


def _lines(text: str) -> list[tuple[int, int]]:
    out = []
    start = 0
    for line in text.split("\n"):
        out.append((start, start + len(line)))
        start += len(line) + 1
    return out


def fences(text: str) -> list[Fence]:
    """The fenced code blocks of ``text``, in order."""
    if "```" not in text:
        return []
    found = []
    lines = _lines(text)
    index = 0
    while index < len(lines):
        start, end = lines[index]
        match = _OPEN.fullmatch(text, start, end)
        index += 1
        if match is None:
            continue
        ticks = len(match.group(1))
        closing = re.compile(" {0,3}`{" + str(ticks) + r",}\s*")
        body_start = lines[index][0] if index < len(lines) else end
        close = None
        body_end = body_start
        while index < len(lines):
            line_start, line_end = lines[index]
            index += 1
            if closing.fullmatch(text, line_start, line_end):
                close = (line_start, line_end)
                break
            body_end = line_end
        found.append(Fence((start, end), (body_start, body_end), close, match.group(2)))
    return found


def code_texts(text: str) -> list[str]:
    """The code of each fenced block of ``text`` (as typed: for copying)."""
    return [text[f.body[0] : f.body[1]] for f in fences(text)]


def inline_spans(text: str, blocks: list[Fence]) -> list[tuple[int, int]]:
    """``(start, end)`` of each `inline code` span (backticks included), outside the blocks."""
    if "`" not in text:
        return []
    spans = []
    for match in _INLINE.finditer(text):
        a, b = match.span()
        if not any(f.open[0] <= a < (f.close or f.body)[1] for f in blocks):
            spans.append((a, b))
    return spans


def layout(text: str, width: int, blocks: list[Fence]) -> tuple[list[tuple[int, int]], list[int]]:
    """Rows of ``text`` at ``width`` cells: ``(start, end)`` offsets and the kind of each.

    Code rows leave :data:`GUTTER` cells for their mark, so they are folded at
    ``width - GUTTER``.
    """
    rows: list[tuple[int, int]] = []
    kinds: list[int] = []

    def prose(a: int, b: int) -> None:
        for start, end in wrap(text[a:b], width):
            rows.append((a + start, a + end))
            kinds.append(TEXT)

    position = 0
    for fence in blocks:
        if fence.open[0] > position:
            prose(position, fence.open[0] - 1)  # up to the newline before the fence
        rows.append(fence.open)
        kinds.append(FENCE)
        if fence.body[1] > fence.body[0] or (fence.close is None and fence.body[0] < len(text)):
            for line_start, line_end in _lines(text[fence.body[0] : fence.body[1]]):
                fold(
                    text,
                    fence.body[0] + line_start,
                    fence.body[0] + line_end,
                    width - GUTTER,
                    rows,
                    kinds,
                )
        elif fence.close is not None and fence.body[0] < fence.close[0]:
            rows.append((fence.body[0], fence.body[0]))  # one empty line of code
            kinds.append(CODE)
        if fence.close is not None:
            rows.append(fence.close)
            kinds.append(FENCE)
            position = fence.close[1] + 1
        else:
            position = len(text) + 1
    if position <= len(text):
        prose(position, len(text))
    return rows, kinds


def fold(
    text: str, start: int, end: int, width: int, rows: list[tuple[int, int]], kinds: list[int]
) -> None:
    """One line of code as rows of at most ``width`` cells (never inside a wide character)."""
    width = max(1, width)
    line = text[start:end]
    if len(line) <= width and (line.isascii() or cell_len(line) <= width):
        rows.append((start, end))
        kinds.append(CODE)
        return
    kind = CODE
    for chunk in chop_cells(line, width):
        rows.append((start, start + len(chunk)))
        kinds.append(kind)
        kind = CODE_MORE
        start += len(chunk)


@lru_cache(maxsize=64)
def _syntax(language: str) -> Syntax | None:
    """A highlighter for ``language`` (its first word), or None: plain."""
    words = language.split()
    lexer = Syntax("", words[0], theme=THEME).lexer if words else None
    return Syntax("", lexer, theme=THEME) if lexer is not None else None


def highlight(text: str, fence: Fence) -> list[tuple[int, int, Style]]:
    """Syntax styles for the code of ``fence`` (offsets into ``text``); a language
    Pygments does not know, or none, is plain."""
    start, end = fence.body
    if end <= start:
        return []
    return [
        (start + a, start + b, style) for a, b, style in _tokens(fence.language, text[start:end])
    ]


@lru_cache(maxsize=512)
def _tokens(language: str, code: str) -> tuple[tuple[int, int, Style], ...]:
    """Styles by offset into ``code``: lexing is most of the cost of drawing code, and a
    block is drawn again when it is selected, matched or resized."""
    syntax = _syntax(language)
    if syntax is None:
        return ()
    spans = []
    for span in syntax.highlight(code).spans:
        style = span.style if isinstance(span.style, Style) else Style.parse(span.style)
        style = Style(color=style.color, bold=style.bold, italic=style.italic)
        if span.end > span.start and style:
            spans.append((span.start, min(span.end, len(code)), style))
    return tuple(spans)
