"""Writing a message in the user's own editor (``$VISUAL``, ``$EDITOR``, else ``vi``).

The editor is found *before* the terminal is handed over: a program that does not
exist (a typo, or an SSH door, which names one on purpose) is refused with a
sentence while the TUI keeps the screen. And the terminal always comes back:
Textual's ``App.suspend()`` resumes only when its block ends normally, so an error
inside it (the program could not be started after all) left the app suspended —
a blank screen, keys echoed as plain text, deaf to Ctrl+Q and SIGTERM.
:func:`suspended` resumes however the block ends.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from textual.app import App, SuspendNotSupported

DEFAULT_EDITOR = "vi"


class EditorUnavailable(Exception):
    """The editor cannot be used; ``str()`` says why, as a sentence for a person."""


def editor_setting(env: Mapping[str, str] | None = None) -> str:
    """The editor command as configured: ``VISUAL``, else ``EDITOR``, else ``vi``."""
    env = os.environ if env is None else env
    return env.get("VISUAL") or env.get("EDITOR") or DEFAULT_EDITOR


def editor_command(env: Mapping[str, str] | None = None) -> list[str]:
    """The editor's program (found on ``PATH``, or the path given) and its arguments;
    :class:`EditorUnavailable` when there is none to start."""
    setting = editor_setting(env)
    try:
        words = shlex.split(setting)
    except ValueError:
        words = []
    if not words:
        raise EditorUnavailable(f"Cannot read the editor setting {setting!r}.")
    path = None if env is None else env.get("PATH")
    program = shutil.which(words[0], path=path)
    if program is None:
        raise EditorUnavailable(
            f"Cannot open the editor: {words[0]} was not found. "
            "Set VISUAL or EDITOR to one you have; the message box keeps your text."
        )
    return [program, *words[1:]]


def editor_found(env: Mapping[str, str] | None = None) -> bool:
    """There is an editor to start (Ctrl+E is offered in the footer)."""
    try:
        editor_command(env)
    except EditorUnavailable:
        return False
    return True


@contextmanager
def suspended(app: App[Any]) -> Iterator[None]:
    """``app.suspend()`` that gives the terminal back to the app however the block ends;
    an error raised in the block is raised again once the app has resumed."""
    failure: BaseException | None = None
    with app.suspend():
        try:
            yield
        except BaseException as exc:  # resume first; the caller sees it after
            failure = exc
    if failure is not None:
        raise failure


def edit_in_editor(app: App[Any], command: list[str], text: str, folder: Path) -> str:
    """Run the editor on ``text`` (a file in ``folder``), the app suspended meanwhile;
    the text as the editor left it. :class:`EditorUnavailable` when it could not run
    or did not end well (the caller keeps what it had)."""
    path = folder / "message.txt"
    path.write_text(text, encoding="utf-8")
    try:
        with suspended(app):
            done = subprocess.run([*command, str(path)], check=False)
    except SuspendNotSupported as exc:
        raise EditorUnavailable("This terminal cannot be handed to an editor.") from exc
    except OSError as exc:
        raise EditorUnavailable(
            f"Cannot open the editor {command[0]}: {exc.strerror or exc}."
        ) from exc
    if done.returncode != 0:
        raise EditorUnavailable(
            f"The editor ended with status {done.returncode}: the message box is unchanged."
        )
    edited = path.read_text(encoding="utf-8")
    return edited[:-1] if edited.endswith("\n") else edited
