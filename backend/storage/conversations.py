"""Maps a pair of users to its file in the data folder and keeps files open.

``ConversationStore`` is the only code that turns usernames into paths. It hands
out one shared :class:`Conversation` per file and keeps at most ``max_open`` of
them open (least recently used closed first). Reads never create files.

In multi-node mode a ``guard`` (``backend.services.placement.Placement.check``) is asked
before every use of a pair's file, with the file's stem (``alice_bob``): it
raises when the pair belongs to another node, so no other node's conversation
is ever read or created here.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from pathlib import Path

from backend.core.usernames import canonical_pair, pair_file_name
from backend.storage.conversation import Conversation


class LeftBehind(OSError):
    """A pair's file was erased, but files beside it (its ``-wal``/``-shm``) could not
    be removed: ``left`` holds each with why."""

    def __init__(self, existed: bool, left: list[tuple[Path, OSError]]) -> None:
        super().__init__(f"could not remove {', '.join(str(p) for p, _ in left)}")
        self.existed = existed
        self.left = left


class ConversationStore:
    def __init__(
        self,
        data_dir: Path,
        *,
        max_open: int = 512,
        synchronous: str = "NORMAL",
        guard: Callable[..., None] | None = None,
    ) -> None:
        self.guard = guard
        self.data_dir = Path(data_dir).resolve()
        self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._max_open = max_open
        self._synchronous = synchronous
        self._lock = threading.Lock()
        self._open: OrderedDict[Path, Conversation] = OrderedDict()
        self._paths: dict[tuple[str, str], Path] = {}

    def path_for(self, user_one: str, user_two: str) -> Path:
        """The pair's file: canonical names sorted, joined by ``_``, plus ``.db``."""
        a, b = canonical_pair(user_one, user_two)
        return self.data_dir / pair_file_name(a, b)

    def exists(self, user_one: str, user_two: str) -> bool:
        """Whether the pair has a file (or one open here)."""
        path = self.path_for(user_one, user_two)
        if self.guard is not None:
            self.guard(path.stem, create=False)
        with self._lock:
            if path in self._open:
                return True
        return path.exists()

    def get(self, user_one: str, user_two: str, *, create: bool) -> Conversation | None:
        """The pair's conversation; ``None`` when it has no file and ``create`` is false."""
        key = (user_one, user_two)
        with self._lock:
            path = self._paths.get(key)
            conversation = self._open.get(path) if path is not None else None
            if conversation is not None and self.guard is None:
                self._open.move_to_end(conversation.path)
                return conversation
        if path is None:
            path = self.path_for(user_one, user_two)  # validates the names
        if self.guard is not None:
            self.guard(path.stem, create=create)
            if conversation is not None:
                with self._lock:
                    if path in self._open:
                        self._open.move_to_end(path)
                return conversation
        if not create and not path.exists():
            return None
        conversation = Conversation(path, synchronous=self._synchronous)
        evicted: list[Conversation] = []
        with self._lock:
            if len(self._paths) > 4 * self._max_open:
                self._paths.clear()  # a cache of validated names -> path, kept bounded
            self._paths[key] = path
            existing = self._open.get(path)
            if existing is not None:
                return existing
            self._open[path] = conversation
            while len(self._open) > self._max_open:
                evicted.append(self._open.popitem(last=False)[1])
        for old in evicted:
            old.close()
        return conversation

    def forget(self, user_one: str, user_two: str) -> bool:
        """Erase a pair's conversation (file and WAL). True when there was one.

        The file goes first and is the point of no return: when it cannot be removed
        this raises that ``OSError`` with nothing removed; once it is gone the
        conversation is erased, and a ``-wal``/``-shm`` beside it that cannot be
        removed raises :class:`LeftBehind` (SQLite ignores a WAL beside no file, or an
        empty one, but the WAL still holds pieces of the erased messages).
        """
        path = self.path_for(user_one, user_two)
        with self._lock:
            conversation = self._open.pop(path, None)
        if conversation is not None:
            conversation.close()
        existed = path.exists()
        path.unlink(missing_ok=True)
        left: list[tuple[Path, OSError]] = []
        for suffix in ("-wal", "-shm"):
            beside = Path(f"{path}{suffix}")
            try:
                beside.unlink(missing_ok=True)
            except OSError as exc:
                left.append((beside, exc))
        if left:
            raise LeftBehind(existed, left)
        return existed

    def open_count(self) -> int:
        """Pair files this process holds open now (``pairchat_open_pair_files``)."""
        return len(self._open)

    def files(self) -> Iterator[Path]:
        """Every pair file in the data folder."""
        return (p for p in sorted(self.data_dir.glob("*_*.db")) if p.is_file())

    def close(self) -> None:
        with self._lock:
            conversations = list(self._open.values())
            self._open.clear()
        for conversation in conversations:
            conversation.close()
