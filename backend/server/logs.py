"""The server's log: one line per event, text or ``--log-format json``, and its last errors.

The same events in both formats - the server's own (``pairchat``), granian's main
process and workers (``_granian``) - one line each. JSON is ``{"time", "level",
"logger", "pid", "message"}`` and, when there is one, ``"error"`` (the exception, its
traceback in one string), ``"request_id"`` (the request the line was logged in,
``backend/core/request_ids.py``) and the request line's ``"method"``, ``"path"``,
``"status"``, ``"ms"``; text ends such a line with ``[request <id>]``.

``serve --access-log`` writes one line per request (``pairchat.requests``, INFO);
without it only the requests answered 5xx are (ERROR).

``LastErrors`` (``protocol/error_lines.py``: the doors keep theirs the same way) keeps
the last few ERROR lines of every process of the server (the main one - granian's own
among them, a worker's unexpected exit - and each worker: the handler is installed
before granian forks them) in a small file per process in the metrics folder, which the
main process serves on the metrics port (``GET /errors``) for ``pairchat-server
status``: bounded, written only when an error is logged, never a label in ``/metrics``.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from backend.core import request_ids
from protocol.error_lines import LastErrors, last_errors

__all__ = ["LastErrors", "also_keep_errors_of", "keep_last_errors", "last_errors", "use"]

FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
REQUEST_FIELDS = ("method", "path", "status", "ms")


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


def keep_last_errors(folder: Path) -> LastErrors:
    """Install ``LastErrors`` for this process and those it forks from now on."""
    handler = LastErrors(folder)
    handler.addFilter(RequestIdFilter())
    logging.getLogger().addHandler(handler)
    return handler


def also_keep_errors_of(name: str) -> None:
    """Keep the errors of a logger that does not reach the root's handlers too (granian's
    ``_granian``: a worker's unexpected exit); nothing when no ``LastErrors`` is kept."""
    logger = logging.getLogger(name)
    for handler in logging.getLogger().handlers:
        if isinstance(handler, LastErrors) and handler not in logger.handlers:
            logger.addHandler(handler)
