"""The one error describer: a client error as a sentence for a person.

Screens, widgets and the sync core all show errors through :func:`describe`, so a
code reads the same everywhere (the sign-in form, a dialog, a toast, the F7 list).
"""

from __future__ import annotations

import re

from tui.client.http import ApiError, ServerUnreachable

SENTENCES = {
    "bad_credentials": "Wrong username or password.",
    "username_taken": "That username is taken. Choose another, or sign in.",
}
"""Codes whose server message is worded for a program, not a person.

``rate_limited`` is not one: each limit says which it is and how long to wait
("too many wrong passwords from your address: try again in 40 seconds"), and a
fixed sentence here once blamed failed attempts for an hourly sign-up limit."""


def describe(exc: Exception) -> str:
    """A short sentence for a person, never empty (a refusal always says why)."""
    if isinstance(exc, ServerUnreachable):
        return f"Cannot reach the server at {exc.url}. Is it running?"
    if isinstance(exc, ApiError):
        text = _one_line(SENTENCES.get(exc.code) or exc.message or exc.code)
        if exc.code == "username_taken" and "reads like" in exc.message:
            # a look-alike of someone else's name: the server's reason is the point
            text = _sentence(_one_line(exc.message)) + " Choose another."
        if exc.code == "invalid_username":  # "'username' is not a valid username: …"
            text = _sentence(re.sub(r"^'[^']*' is not", "not", text))
        if exc.code == "rate_limited":
            text = _sentence(text or "too many requests; wait a little and try again")
        return text or f"the server answered {exc.status}"
    return _one_line(str(exc)) or type(exc).__name__


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _sentence(text: str) -> str:
    """``text`` with a capital first letter and a full stop."""
    text = text[:1].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."
