"""The free-disk floor: below it, writes that grow the data are refused before they start.

SQLite itself fails cleanly on a full disk (``StorageUnavailable``), but by then
the disk is full for everything on the machine, and a send that stored its
message may fail to update the feed. ``DiskFloor.check()`` refuses earlier and
whole: sends, new conversations, registrations and invites call it first and
get ``DiskAlmostFull`` (503) with nothing written. Reads, logins, logouts and
deletions are never refused by it (they free or need almost nothing).
"""

from __future__ import annotations

import os
from pathlib import Path

from backend.core.errors import DiskAlmostFull

MIB = 1024 * 1024


class DiskFloor:
    def __init__(self, data_dir: Path, floor_bytes: int) -> None:
        self.data_dir = data_dir
        self.floor_bytes = floor_bytes

    def free_bytes(self) -> int:
        stats = os.statvfs(self.data_dir)
        return stats.f_bavail * stats.f_frsize

    def check(self) -> None:
        if self.floor_bytes <= 0:
            return
        try:
            free = self.free_bytes()
        except OSError:
            return  # the write itself will say what is wrong
        if free < self.floor_bytes:
            raise DiskAlmostFull(
                f"the server's disk is almost full (under {self.floor_bytes // MIB} MiB free); "
                "nothing was stored, try again later"
            )
