"""``pairchat-server export``'s two formats, safe to print on an operator's terminal.

Messages are whatever users typed, and an export is read in a terminal: an
escape sequence in a message (OSC 52 sets the clipboard, CSI moves the cursor,
a carriage return rewrites the line) must never reach it raw, and a message
must never forge a line that looks like another message. So:

- ``jsonl``: one JSON object per message (the API's message shape), with every
  control, format and separator character (C0, DEL, C1, bidi overrides, line
  separators…) written as a ``\\uXXXX`` escape — still valid JSON, same data;
- ``md``: one list item per message, ``- **author** (time): text``. In the
  text, control characters become visible ``\\u001b``-style escapes, Markdown's
  punctuation is backslash-escaped, and a message's own line breaks continue
  on indented lines, so a line that starts with ``- **`` is always a real
  message. Its reactions follow on one indented line, ``reactions: 👍 alice, bob · ❤️ carol``.

A message's file is named in the transcript (jsonl: its ``attachment`` object; md: an
indented ``file:`` line with its name, size and type). With ``--output PATH`` the
transcript goes to PATH and the files beside it, each ``PATH.files/<id>-<name>``
(``saved_name``; the name is already a plain base name, see
``backend/services/files.py``, cut here so ``<id>-<name>`` fits in 255 bytes), and
the transcript says where each one is
(jsonl: ``"file": "<PATH.files>/<id>-<name>"``, relative to the transcript).
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable, Iterator

import arrow

from backend.http import replies
from backend.services.files import MAX_NAME_BYTES, fit_name
from backend.storage.conversation import Message

_UNSAFE_CATEGORIES = {"Cc", "Cf", "Zl", "Zp", "Co", "Cs", "Cn"}
_MARKDOWN = re.compile(r"([\\`*_\[\]<>#|~{}])")
_LINE_START = re.compile(r"^(\s*)([-+=]|\d+[.)])", re.M)


def _unsafe(char: str) -> bool:
    return unicodedata.category(char) in _UNSAFE_CATEGORIES


def _visible(char: str) -> str:
    """A control character as text a terminal prints as is (``\\u001b``)."""
    code = ord(char)
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def saved_name(message: Message) -> str:
    """Where an export puts a message's file, inside its ``.files`` folder: ``<id>-<name>``,
    the name cut (extension kept) so the whole stays within a file system's 255 bytes."""
    assert message.attachment is not None
    prefix = f"{message.id}-"
    return prefix + fit_name(message.attachment.name, MAX_NAME_BYTES - len(prefix))


def jsonl_line(message: Message, saved_as: str | None = None) -> str:
    """One message as a JSON line; ``saved_as``: where its file was written (relative)."""
    found = replies.message(message)
    if saved_as is not None:
        found["file"] = saved_as
    text = json.dumps(found, ensure_ascii=False)
    return "".join(json.dumps(c)[1:-1] if _unsafe(c) else c for c in text)


def markdown_text(text: str) -> str:
    """One message's text for the Markdown export: escaped, line breaks indented."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    escaped = []
    for line in lines:
        marked = _LINE_START.sub(r"\1\\\2", _MARKDOWN.sub(r"\\\1", line))
        escaped.append("".join(_visible(c) if _unsafe(c) else c for c in marked))
    return "\n  ".join(escaped)


def markdown_lines(
    low: str, high: str, messages: Iterable[Message], files_folder: str | None = None
) -> Iterator[str]:
    """The Markdown transcript; ``files_folder``: where the files were written (relative)."""
    yield f"# {markdown_text(low)} and {markdown_text(high)}\n"
    for message in messages:
        when = _when(message.date_sent)
        yield f"- **{markdown_text(message.author)}** ({when}): {markdown_text(message.message)}"
        found = message.attachment
        if found is not None:
            where = "" if files_folder is None else f" → {files_folder}/{saved_name(message)}"
            yield (
                f"  file: {markdown_text(found.name)} ({found.size} bytes, "
                f"{markdown_text(found.type)}){markdown_text(where)}"
            )
        if message.reactions:
            shown = " · ".join(
                f"{markdown_text(emoji)} {markdown_text(', '.join(names))}"
                for emoji, names in message.reactions.items()
            )
            yield f"  reactions: {shown}"


def _when(date_sent: object) -> str:
    try:
        return str(arrow.get(float(str(date_sent))).isoformat())
    except (TypeError, ValueError, OverflowError, arrow.parser.ParserError):
        return markdown_text(str(date_sent))
