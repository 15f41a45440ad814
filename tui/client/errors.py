"""The one error describer: a client error as a sentence for a person.

Screens, widgets and the sync core all show errors through :func:`describe`, so a
code reads the same everywhere (the sign-in form, a dialog, a toast, the F7 list).
"""

from __future__ import annotations

from tui.client.http import ApiError, ServerUnreachable

SENTENCES = {
    "bad_credentials": "Wrong username or password.",
    "username_taken": "That username is taken. Choose another, or sign in.",
    "rate_limited": "Too many failed attempts. Wait a minute and try again.",
}
"""Codes whose server message is worded for a program, not a person."""


def describe(exc: Exception) -> str:
    """A short sentence for a person, never empty (a refusal always says why)."""
    if isinstance(exc, ServerUnreachable):
        return f"Cannot reach the server at {exc.url}. Is it running?"
    if isinstance(exc, ApiError):
        text = SENTENCES.get(exc.code) or exc.message or exc.code
        return _one_line(text) or f"the server answered {exc.status}"
    return _one_line(str(exc)) or type(exc).__name__


def _one_line(text: str) -> str:
    return " ".join(text.split())
