"""One server per data folder: an exclusive lock on ``_server.lock`` in it.

``pairchat-server serve`` takes the lock for its whole life (its workers inherit
it); a second server on the same folder, or an operator command that must not
run beside a server (``forget``), finds it taken and says who holds it. The
lock is the kernel's (``flock``): it goes when its holder exits, even killed,
so there is never a stale lock to clean up. The file's text (pid, address) is
only for the message.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

LOCK_FILE = "_server.lock"


class FolderBusy(Exception):
    """The lock is held by someone else; ``holder`` says who, as they wrote it."""

    def __init__(self, folder: Path, holder: str) -> None:
        super().__init__(holder)
        self.folder = folder
        self.holder = holder


class FolderLock:
    def __init__(self, folder: Path) -> None:
        self.path = folder / LOCK_FILE
        self._fd: int | None = None

    def acquire(self, holder: str) -> FolderLock:
        """Take the lock and write ``holder`` into the file, or raise ``FolderBusy`` at once."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            text = ""
            with contextlib.suppress(OSError):
                text = os.pread(fd, 512, 0).decode("utf-8", "replace").strip()
            os.close(fd)
            raise FolderBusy(self.path.parent, text or "another process") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, holder.encode("utf-8"), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
            os.close(self._fd)
            self._fd = None
