"""``serve --log-format json``: one JSON object per line, for log shippers.

The same events as the text format - the server's own (``pairchat``), granian's
main process and workers (``_granian``) - each as ``{"time", "level", "logger",
"pid", "message"}`` and, when there is one, ``"error"`` (the exception, its
traceback in one string): a line is always one event.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

FORMATS = ("text", "json")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "pid": record.process,
            "message": record.getMessage(),
        }
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


def use(log_format: str) -> dict[str, Any] | None:
    """Set the format of this process's log (its workers inherit it); granian's own
    logging config for the same (``log_dictconfig``), None for its default."""
    if log_format != "json":
        return None
    for handler in logging.getLogger().handlers:
        handler.setFormatter(JsonFormatter())
    ours = {"()": f"{__name__}.JsonFormatter"}
    return {"formatters": {"generic": ours, "access": ours}}
