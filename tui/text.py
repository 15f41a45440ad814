"""User text made safe for a terminal grid: visible controls, stable widths, wrapping, links.

No Textual here (Rich's cell tables only), so the sync core and the tests can use it.

Terminals disagree with each other, and with Rich's width tables, about some
sequences: tmux draws ``❤️`` (a heart plus VARIATION SELECTOR-16) in one cell
where Rich counts two, a skin-tone modifier in two more cells where Rich counts
none, a family joined by ZERO WIDTH JOINERs in two cells or in six. Each
disagreement shifts the rest of the row by a cell and leaves stray characters.
:func:`display_text` rewrites those sequences to forms every terminal and Rich
measure alike, and shows invisible format characters (bidi overrides, zero-width
spaces, …) as visible ``⟨U+202E⟩`` marks so they can neither hide text nor
reorder a line. It is used for everything drawn from user data; what is stored
and sent is never changed.

:func:`wrap` breaks display text into lines of at most ``width`` cells (at
spaces where it can, never inside a wide character), returning offsets so that
styles (search matches, links) can be applied by position. :func:`url_spans`
finds links, which the chat view draws as OSC 8 hyperlinks: a URL folded over
two lines stays one clickable link.

:func:`human_size` (units of 1,024, as the server's limits are set, written KB/MB/GB) and
:func:`attachment_label` make the "📎 name · 1.2 MB" line of a message that carries a
file: the chat view, ``pairchat history`` and ``tail`` all draw it with these.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from rich.cells import cell_len, chop_cells, split_graphemes

from tui.client.models import Attachment

ZWJ = "\u200d"
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# Anything that may need rewriting: controls, format characters (Cf), variation
# selectors, emoji modifiers and tag characters. Plain text skips the slow path.
_SUSPECT = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u00ad\u0600-\u0605\u061c\u06dd\u070f\u180e"
    "\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufe00-\ufe0f\ufeff"
    "\ufff9-\ufffb\U000110bd\U0001bca0-\U0001bca3\U0001d173-\U0001d17a"
    "\U0001f3fb-\U0001f3ff\U000e0001-\U000e007f\U000e0100-\U000e01ef]"
)
_DROP = re.compile("[\ufe00-\ufe0f\U000e0100-\U000e01ef\U0001f3fb-\U0001f3ff\U000e0020-\U000e007f]")
_URL = re.compile(r"\b(?:https?://|www\.)[^\s<>\"'`]+", re.IGNORECASE)
_URL_TRAILING = ".,;:!?)]}'\""
TAB = "    "


def visible_mark(char: str) -> str:
    return f"\u27e8U+{ord(char):04X}\u27e9"


def _is_pictographic(char: str) -> bool:
    """Emoji-like: a symbol of the emoji blocks (where ZWJ sequences live)."""
    code = ord(char)
    return (
        0x1F000 <= code <= 0x1FAFF
        or 0x2600 <= code <= 0x27BF
        or 0x2190 <= code <= 0x21FF
        or 0x2B00 <= code <= 0x2BFF
        or code in (0x00A9, 0x00AE, 0x203C, 0x2049, 0x2122, 0x2139, 0x3030, 0x303D)
    )


@lru_cache(maxsize=8192)
def _display_slow(text: str) -> str:
    out: list[str] = []
    length = len(text)
    for index, char in enumerate(text):
        code = ord(char)
        if char == "\t":
            out.append(TAB)
        elif char == "\n":
            out.append(char)
        elif _CONTROL.match(char):
            out.append(f"^{chr((code + 64) % 128)}")
        elif _DROP.match(char):
            continue  # variation selectors, skin-tone modifiers, emoji tag sequences
        elif char == ZWJ:
            before = _previous_base(text, index)
            after = text[index + 1] if index + 1 < length else ""
            if before and after and _is_pictographic(before) and _is_pictographic(after):
                continue  # an emoji ZWJ sequence: shown as its parts, same width everywhere
            out.append(visible_mark(char))
        elif unicodedata.category(char) == "Cf":
            out.append(visible_mark(char))
        else:
            out.append(char)
    return "".join(out)


def _previous_base(text: str, index: int) -> str:
    """The character before ``index``, skipping what :data:`_DROP` removes."""
    index -= 1
    while index >= 0 and _DROP.match(text[index]):
        index -= 1
    return text[index] if index >= 0 else ""


def display_text(text: object) -> str:
    """``text`` as it may be drawn: controls as ``^X``, format characters as ``⟨U+XXXX⟩``,
    tabs as spaces, and emoji sequences in a form of one width in every terminal."""
    value = str(text)
    if "\t" not in value and not _SUSPECT.search(value):
        return value
    return _display_slow(value)


def one_line(text: object) -> str:
    """:func:`display_text` on one line (names, titles, toasts): newlines become ``⏎``."""
    return display_text(text).replace("\n", "\u23ce")


def fit(text: str, width: int) -> str:
    """``text`` (display text, one line) cut to ``width`` cells with an ellipsis."""
    if width <= 0:
        return ""
    if cell_len(text) <= width:
        return text
    if width == 1:
        return "\u2026"
    head = chop_cells(text, width - 1)[0]
    return head + "\u2026"


def wrap(text: str, width: int) -> list[tuple[int, int]]:
    """Lines of display ``text`` at ``width`` cells: ``(start, end)`` offsets into it.

    Breaks at ``\\n``, then after spaces; a word wider than the line is folded
    (never inside a wide character). Spaces at a soft break are left out.
    """
    width = max(1, width)
    lines: list[tuple[int, int]] = []
    start = 0
    for paragraph in text.split("\n"):
        end = start + len(paragraph)
        if len(paragraph) <= width and (paragraph.isascii() or cell_len(paragraph) <= width):
            lines.append((start, end))
        else:
            _wrap_paragraph(paragraph, start, width, lines)
        start = end + 1
    return lines


def _wrap_paragraph(paragraph: str, offset: int, width: int, lines: list[tuple[int, int]]) -> None:
    line_start = 0
    line_cells = 0
    for match in re.finditer(r"\S+|\s+", paragraph):
        piece = match.group()
        cells = cell_len(piece)
        if piece[0].isspace():
            # Spaces stay on the line they follow; at the edge they become the break.
            if line_cells + cells <= width:
                line_cells += cells
            else:
                if line_cells:
                    lines.append((offset + line_start, offset + match.start()))
                line_start = match.end()
                line_cells = 0
            continue
        if line_cells + cells <= width:
            line_cells += cells
            continue
        if line_cells:
            # Break before the word (trailing spaces dropped from the line).
            line_end = match.start()
            while line_end > line_start and paragraph[line_end - 1].isspace():
                line_end -= 1
            lines.append((offset + line_start, offset + line_end))
            line_start = match.start()
            line_cells = 0
        if cells <= width:
            line_cells = cells
            continue
        # A word wider than a line: fold it.
        chunk_start = match.start()
        for chunk in chop_cells(piece, width):
            chunk_end = chunk_start + len(chunk)
            chunk_cells = cell_len(chunk)
            if chunk_end < match.end():
                lines.append((offset + chunk_start, offset + chunk_end))
                chunk_start = chunk_end
            else:
                line_start = chunk_start
                line_cells = chunk_cells
    if line_start < len(paragraph) or not lines or lines[-1][1] < offset:
        lines.append((offset + line_start, offset + len(paragraph)))


def url_spans(text: str) -> list[tuple[int, int, str]]:
    """``(start, end, url)`` of each link in display ``text``."""
    spans = []
    for match in _URL.finditer(text):
        url = match.group().rstrip(_URL_TRAILING)
        if url.count("(") > url.count(")") and match.group()[len(url) : len(url) + 1] == ")":
            url += ")"
        target = url if "://" in url else f"https://{url}"
        spans.append((match.start(), match.start() + len(url), target))
    return spans


def same_width(text: str) -> str:
    """``text`` with each risky grapheme replaced by a safe one of the *same* Rich width.

    For widgets that lay text out themselves (the composer): their cursor
    arithmetic uses Rich's widths, so what is drawn must keep them. The text
    itself (what is sent) is not changed.
    """
    if not _SUSPECT.search(text):
        return text
    spans, _ = split_graphemes(text)
    out = []
    for start, end, cells in spans:
        cluster = text[start:end]
        if not _SUSPECT.search(cluster) and ZWJ not in cluster:
            out.append(cluster)
            continue
        base = _SUSPECT.sub("", cluster).replace(ZWJ, "")
        if cell_len(base) > cells:
            base = chop_cells(base, cells)[0] if cells else ""
        out.append(base + " " * (cells - cell_len(base)))
    return "".join(out)


def key_label(keys: str) -> str:
    """Key names as people write them: ``ctrl+end,end`` → ``Ctrl+End, End``."""
    names = {
        "question_mark": "?",
        "pageup": "PageUp",
        "pagedown": "PageDown",
        "enter": "Enter",
        "escape": "Esc",
        "delete": "Delete",
    }
    out = []
    for key in keys.split(","):
        key = key.strip()
        parts = [names.get(p, p.capitalize() if len(p) > 1 else p) for p in key.split("+")]
        out.append("+".join(parts))
    return ", ".join(out)


PAPERCLIP = "\U0001f4ce"
_UNITS = ("KB", "MB", "GB", "TB")


def human_size(size: int) -> str:
    """``size`` bytes for a person: ``512 B``, ``1.2 KB``, ``25 MB``, ``30.1 MB``, ``250 MB``.

    Units of 1,024 bytes, as the server states its limits (25 MiB shows as 25 MB),
    so a file's size and the limit it is refused by read alike."""
    if size < 1000:
        return f"{size} B"
    value = float(size)
    for unit in _UNITS:
        value /= 1024
        shown = f"{value:.1f}" if value < 99.95 else f"{value:.0f}"
        if float(shown) < 1000 or unit == _UNITS[-1]:
            return f"{shown.removesuffix('.0')} {unit}"
    raise AssertionError("unreachable")


def attachment_label(attachment: Attachment) -> str:
    """The line that stands for a file: ``📎 report.pdf · 1.2 MB`` (the name on one line,
    its controls visible)."""
    return f"{PAPERCLIP} {one_line(attachment.name)} \u00b7 {human_size(attachment.size)}"


def one_line_preview(text: str, attachment: Attachment | None) -> str:
    """A message on one line: its text, or its file's line when it has no text."""
    return one_line(text) or (attachment_label(attachment) if attachment is not None else "")


def with_attachment(text: str, attachment: Attachment | None) -> str:
    """Display ``text`` with the attachment's line under it (the line alone without text)."""
    if attachment is None:
        return text
    label = attachment_label(attachment)
    return f"{text}\n{label}" if text else label
