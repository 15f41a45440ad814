"""The secret the SSH door shows the API (``X-Pairchat-Door``): ``door.secret`` in the data folder.

The same file and rules as the door's own ``doors/secret.py`` (which the backend
does not import): ``PAIRCHAT_DOOR_SECRET`` when set (a door on another machine),
else ``door.secret`` (0600) in the data folder, created by whoever starts first —
the API server or a door — as 32 random bytes of URL-safe text. It is written
whole under a temporary name and linked into place, so nobody ever reads half of
it; a file others may read is refused (``StorageUnavailable``), as the door
refuses it.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
from pathlib import Path

from backend.core.errors import StorageUnavailable

SECRET_FILE = "door.secret"


def door_secret(data_dir: Path, given: str = "") -> str:
    """The secret: ``given`` (the setting) if any, else the file's, creating it once."""
    if given.strip():
        return given.strip()
    path = data_dir / SECRET_FILE
    if not path.exists():
        _create_once(path, secrets.token_urlsafe(32).encode("ascii") + b"\n")
    try:
        mode = path.stat().st_mode
        if mode & 0o077:
            raise StorageUnavailable(
                f"{path} is readable by others (mode {mode & 0o777:o}); chmod 600 it"
            )
        return path.read_bytes().decode("ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise StorageUnavailable(f"the door secret cannot be read ({exc})") from None


def _create_once(path: Path, content: bytes) -> None:
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # 0600
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        with contextlib.suppress(FileExistsError):  # someone else's won: read theirs
            os.link(tmp, path)
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()
