"""Private files the doors create once and then only read (host key, shared secret).

Whoever starts first creates the file; a door or server starting at the same
moment reads the one that won. The file is written in full under a temporary
name and then linked into place (``link`` fails if the name exists), so nobody
ever reads a half-written key or secret.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def create_once(path: Path, make: Callable[[], bytes]) -> bool:
    """Create ``path`` (0600) with ``make()`` unless it exists; True if this call made it."""
    if path.exists():
        return False
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # 0600
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(make())
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        return True
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


def read_private(path: Path) -> bytes:
    """The file's bytes; refuses a file that others may read or write (it holds a secret)."""
    mode = path.stat().st_mode
    if mode & 0o077:
        raise PermissionError(f"{path} is readable by others (mode {mode & 0o777:o}); chmod 600 it")
    return path.read_bytes()
