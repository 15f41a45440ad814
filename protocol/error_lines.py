"""The last-errors files: what every process of a running server - its main process,
each worker, each door it started - says it got wrong lately, for ``pairchat-server
status`` (served by the metrics port's ``GET /errors``). One definition for all of
them, since the doors import nothing of the backend.

A process keeps its last ``KEEP`` ERROR lines in ``errors_<pid>.jsonl`` in the
metrics folder (the one ``PROMETHEUS_MULTIPROC_DIR`` names), replaced whole at each
new error: written only when an error is logged, bounded, and a reader never sees
half a file. A line is ``{"time", "level", "logger", "pid", "message"}`` and, when the
record has one, ``"request_id"`` (the API request, or the door session, it was
logged in); the message is its first line, printable, at most ``LINE_CHARS``.
"""

from __future__ import annotations

import contextlib
import glob
import json
import logging
import os
from collections import deque
from pathlib import Path
from typing import Any

KEEP = 20  # error lines each process keeps for `status`
SHOWN = 10  # of all processes' lines, the newest served
LINE_CHARS = 300  # an error line's most characters (its first line)
ERRORS_FILE = "errors_{pid}.jsonl"
FOLDER_ENV = "PROMETHEUS_MULTIPROC_DIR"
"""The metrics folder a server started with ``--metrics-port`` hands its workers and
doors: where the last-errors files go."""


class LastErrors(logging.Handler):
    """ERROR lines into ``errors_<pid>.jsonl`` in ``folder``: the last ``KEEP`` of the
    process that logs them (a forked worker starts its own, empty). A filter that sets
    ``record.request_id`` names the request or session of each line."""

    def __init__(self, folder: Path) -> None:
        super().__init__(logging.ERROR)
        self.folder = folder
        self._pid = os.getpid()
        self._lines: deque[dict[str, Any]] = deque(maxlen=KEEP)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            pid = os.getpid()
            if pid != self._pid:  # a worker forked with its parent's lines: not its own
                self._pid, self._lines = pid, deque(maxlen=KEEP)
            self._lines.append(error_line(record))
            path = self.folder / ERRORS_FILE.format(pid=pid)
            part = path.with_suffix(".part")
            part.write_text("".join(json.dumps(line) + "\n" for line in self._lines))
            os.replace(part, path)
        except Exception:  # the log must never take the process down
            self.handleError(record)


def error_line(record: logging.LogRecord) -> dict[str, Any]:
    """The line ``record`` is kept as."""
    text = record.getMessage()
    if record.exc_info and record.exc_info[1] is not None:
        error = record.exc_info[1]
        text = f"{text}: {type(error).__name__}: {error}"
    first = text.splitlines()[0] if text else ""
    line = {
        "time": round(record.created, 3),
        "level": record.levelname.lower(),
        "logger": record.name,
        "pid": record.process,
        "message": "".join(c if c.isprintable() else "?" for c in first[:LINE_CHARS]),
    }
    rid = getattr(record, "request_id", None)
    if rid:
        line["request_id"] = rid
    return line


def last_errors(folder: Path, count: int = SHOWN) -> list[dict[str, Any]]:
    """The newest ``count`` error lines of every process (dead ones' too), oldest first."""
    found: list[dict[str, Any]] = []
    for name in glob.glob(os.path.join(folder, ERRORS_FILE.format(pid="*"))):
        with contextlib.suppress(OSError):
            for text in Path(name).read_text().splitlines():
                with contextlib.suppress(ValueError):
                    line = json.loads(text)
                    if isinstance(line, dict) and isinstance(line.get("time"), int | float):
                        found.append(line)
    found.sort(key=lambda line: line["time"])
    return found[-count:]
