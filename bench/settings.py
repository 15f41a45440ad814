"""What a run is allowed to do: its size (full or ``--quick``) and its temp folder."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    workdir: Path
    """A temporary folder: every server's data folder and log live under it."""
    quick: bool = False
    """A short run (smaller counts, shorter windows): for checking the bench itself."""

    def data_dir(self, name: str) -> Path:
        path = self.workdir / name / "data"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def pick(self, full: float, quick: float) -> float:
        return quick if self.quick else full

    def count(self, full: int, quick: int) -> int:
        return quick if self.quick else full
