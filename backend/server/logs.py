"""The server's log: one line per event, text or ``--log-format json``, and its last errors.

The same events in both formats - the server's own (``pairchat``), granian's main
process and workers (``_granian``) - one line each. JSON is ``{"time", "level",
"logger", "pid", "message"}`` and, when there is one, ``"error"`` (the exception, its
traceback in one string), ``"request_id"`` (the request the line was logged in,
``backend/core/request_ids.py``) and the request line's ``"method"``, ``"path"``,
``"status"``, ``"ms"``; text ends such a line with ``[request <id>]``.

``serve --access-log`` writes one line per request (``pairchat.requests``, INFO);
without it only the requests answered 5xx are (ERROR).

``LastErrors`` keeps the last few ERROR lines of every process of the server (the main
one - granian's own among them, a worker's unexpected exit - and each worker: the
handler is installed before granian forks them) in a small
file per process in the metrics folder, which the main process serves on the metrics
port (``GET /errors``) for ``pairchat-server status``: bounded (``KEEP`` lines a
process), written only when an error is logged, never a label in ``/metrics``.
"""

from __future__ import annotations

import contextlib
import glob
import json
import logging
import os
from collections import deque
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from backend.core import request_ids

FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
REQUEST_FIELDS = ("method", "path", "status", "ms")
KEEP = 20  # error lines each process keeps for `status`
SHOWN = 10  # of all processes' lines, the newest served
LINE_CHARS = 300  # an error line's most characters (its first line)
ERRORS_FILE = "errors_{pid}.jsonl"


class RequestIdFilter(logging.Filter):
    """Adds ``request_id`` (or None) to every record: the request its thread is serving."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_ids.CURRENT.get()
        return True


class TextFormatter(logging.Formatter):
    """The text format, with ``[request <id>]`` at the end of a line logged in a request."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        rid = getattr(record, "request_id", None)
        return f"{line} [request {rid}]" if rid else line


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "pid": record.process,
            "message": record.getMessage(),
        }
        rid = getattr(record, "request_id", None)
        if rid:
            line["request_id"] = rid
        for name in REQUEST_FIELDS:
            if hasattr(record, name):
                line[name] = getattr(record, name)
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


def use(log_format: str, access_log: bool = False) -> dict[str, Any] | None:
    """Set the format of this process's log (its workers inherit it), and whether every
    request is logged; granian's own logging config for the same (``log_dictconfig``),
    None for its default."""
    formatter: logging.Formatter = JsonFormatter() if log_format == "json" else TextFormatter()
    for handler in logging.getLogger().handlers:
        handler.setFormatter(formatter)
        handler.addFilter(RequestIdFilter())
    logging.getLogger("pairchat.requests").setLevel(logging.INFO if access_log else logging.ERROR)
    if log_format != "json":
        return None
    ours = {"()": f"{__name__}.JsonFormatter"}
    return {"formatters": {"generic": ours, "access": ours}}


class LastErrors(logging.Handler):
    """ERROR lines into ``errors_<pid>.jsonl`` in ``folder``: the last ``KEEP`` of the
    process that logs them (a forked worker starts its own, empty)."""

    def __init__(self, folder: Path) -> None:
        super().__init__(logging.ERROR)
        self.folder = folder
        self._pid = os.getpid()
        self._lines: deque[dict[str, Any]] = deque(maxlen=KEEP)
        self.addFilter(RequestIdFilter())

    def emit(self, record: logging.LogRecord) -> None:
        try:
            pid = os.getpid()
            if pid != self._pid:  # a worker forked with its parent's lines: not its own
                self._pid, self._lines = pid, deque(maxlen=KEEP)
            self._lines.append(_error_line(record))
            path = self.folder / ERRORS_FILE.format(pid=pid)
            part = path.with_suffix(".part")
            part.write_text("".join(json.dumps(line) + "\n" for line in self._lines))
            os.replace(part, path)
        except Exception:  # the log must never take the server down
            self.handleError(record)


def _error_line(record: logging.LogRecord) -> dict[str, Any]:
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


def keep_last_errors(folder: Path) -> LastErrors:
    """Install ``LastErrors`` for this process and those it forks from now on."""
    handler = LastErrors(folder)
    logging.getLogger().addHandler(handler)
    return handler


def also_keep_errors_of(name: str) -> None:
    """Keep the errors of a logger that does not reach the root's handlers too (granian's
    ``_granian``: a worker's unexpected exit); nothing when no ``LastErrors`` is kept."""
    logger = logging.getLogger(name)
    for handler in logging.getLogger().handlers:
        if isinstance(handler, LastErrors) and handler not in logger.handlers:
            logger.addHandler(handler)


def last_errors(folder: Path, count: int = SHOWN) -> list[dict[str, Any]]:
    """The newest ``count`` error lines of every process (dead workers' too), oldest first."""
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
