"""Small JSON files shared by every instance of the client that uses one config folder.

Two TUIs of the same user may run at once (two terminals, a laptop and an SSH
session on one home folder). Each change is therefore a read-modify-write under
an exclusive ``flock`` on a lock file beside the data file: the change is applied
to what is on disk *now*, never to a copy read at start, so one instance never
overwrites what the other wrote. Writes are atomic (temp file, fsync,
``os.replace``) and owner-only (0600).

An unreadable file is moved aside (``<name>.corrupt-<time>``), never overwritten.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: one instance per folder is assumed
    fcntl = None  # type: ignore[assignment]


class SharedJsonFile:
    """A JSON object on disk, changed only through :meth:`update` (locked)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock_path = path.with_name(path.name + ".lock")
        self._stamp: tuple[int, int, int] | None = None

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def _stat(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def changed_on_disk(self) -> bool:
        """True when the file is not what this object last read or wrote (cheap: a stat)."""
        return self._stat() != self._stamp

    def read(self) -> dict[str, Any]:
        with self._locked():
            return self._read_unlocked()

    def _read_unlocked(self) -> dict[str, Any]:
        self._stamp = self._stat()
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError):
            with contextlib.suppress(OSError):
                os.replace(self.path, self.path.with_suffix(f".corrupt-{time.time_ns()}"))
            self._stamp = None
            return {}
        return data if isinstance(data, dict) else {}

    def update(self, change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
        """Apply ``change`` to the current contents under the lock; returns the new contents."""
        with self._locked():
            data = self._read_unlocked()
            change(data)
            self._write_unlocked(data)
            return data

    def _write_unlocked(self, data: dict[str, Any]) -> None:
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(data, handle, ensure_ascii=False, indent=1)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        self._stamp = self._stat()
