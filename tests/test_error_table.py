"""Unit: the one table at the HTTP edge covers every domain error and matches the error
tables of docs/api.md and docs/design.md."""

from __future__ import annotations

import re

import backend.server.app  # noqa: F401  (loads every module that defines an error class)
from backend.core.errors import PairchatError, StorageUnavailable
from backend.http.errors import ERRORS, HTTP_CODES, status_and_code
from tests.support import REPO


def _backend_subclasses(cls: type) -> set[type]:
    found = {sub for sub in cls.__subclasses__() if sub.__module__.startswith("backend.")}
    for sub in list(found):
        found |= _backend_subclasses(sub)
    return found


def test_every_error_a_service_can_raise_has_a_row() -> None:
    classes = _backend_subclasses(PairchatError)
    leaves = {cls for cls in classes if not _backend_subclasses(cls)}
    missing = {cls.__name__ for cls in leaves if cls not in ERRORS}
    assert not missing, f"add a row to backend/http/errors.py ERRORS for {sorted(missing)}"


def test_a_subclass_without_a_row_takes_its_base_class_row() -> None:
    class DiskOnFire(StorageUnavailable):
        pass

    assert status_and_code(DiskOnFire("smoke")) == (503, "unavailable")


def _documented(path: str, section: str) -> dict[int, set[str]]:
    """The error table under ``section`` of a page: each status with its codes."""
    text = (REPO / path).read_text()
    start = text.index(section)
    end = text.find("\n## ", start + len(section))
    documented: dict[int, set[str]] = {}
    for status, codes in re.findall(
        r"^\s*\| (\d{3}) \| ([^|]+) \|", text[start : end if end > 0 else None], flags=re.M
    ):
        documented.setdefault(int(status), set()).update(re.findall(r"`([a-z_]+)`", codes))
    return documented


def _emitted() -> dict[int, set[str]]:
    emitted: dict[int, set[str]] = {}
    for status, code in [*ERRORS.values(), *HTTP_CODES.items()]:
        emitted.setdefault(status, set()).add(code)
    return emitted


def test_the_documented_codes_are_exactly_the_table() -> None:
    """docs/api.md's error table lists each status with its codes; the edge emits no others."""
    assert _documented("docs/api.md", "## Conventions") == _emitted()


def test_design_md_lists_exactly_the_same_codes() -> None:
    """docs/design.md's table ("Errors") is the contract's copy: the same statuses and codes."""
    assert _documented("docs/design.md", "## Errors") == _emitted()
