"""The optional parts of pairchat and the extra that installs each (pyproject.toml).

A plain install (``pip install pairchat``) runs the TUI and a one-box server; the
SSH and browser doors need ``pairchat[doors]`` and multi-node mode
``pairchat[cluster]`` (docs/deploy.md, "Installing"). Code that uses an extra
imports it lazily and asks here first, so a missing one is a line that names the
extra to install, not a traceback.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass


@dataclass(frozen=True)
class Feature:
    name: str  # as a sentence says it: "the SSH door"
    extra: str  # the pyproject.toml extra that installs it
    modules: tuple[str, ...]  # what it imports that a plain install lacks


SSH_DOOR = Feature("the SSH door", "doors", ("asyncssh",))
WEB_DOOR = Feature("the browser door", "doors", ("textual_serve", "aiohttp", "aiohttp_jinja2"))
MULTI_NODE = Feature("multi-node mode", "cluster", ("psycopg", "redis"))
PLACEMENT = Feature("pairchat-server placement", "cluster", ("psycopg",))


class MissingExtra(RuntimeError):
    """A feature whose extra is not installed; the text says which one to install."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def require(feature: Feature) -> None:
    """Raise ``MissingExtra`` unless every module of ``feature`` can be imported."""
    for module in feature.modules:
        if importlib.util.find_spec(module) is None:
            raise MissingExtra(
                f"{feature.name} needs the {feature.extra} extra ({module} is not installed): "
                f"pip install 'pairchat[{feature.extra}]'"
            )
