"""``pairchat-server status``: what the server on a data folder is doing, on one screen.

Read from the running server, never from its files: the folder's lock
(``backend/storage/lock.py``) says whether a server holds the folder, and its text
names the server's pid, API address and - when it was started with
``--metrics-port`` - its metrics URL, which this scrapes once (``GET /metrics``,
``backend/server/metrics.py``). Without a metrics port only "running, pid N" can
be told. The last errors (ERROR lines of the server's processes, the 5xx replies among
them) come from the same port's ``GET /errors`` (``backend/server/logs.py``).
"""

from __future__ import annotations

import fcntl
import os
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from backend.storage.lock import LOCK_FILE

NOT_RUNNING = 3  # the exit code when no server holds the folder (LSB's "not running")
_HOLDER = re.compile(r"pid (\d+), (\S+?)(?:, metrics (\S+))?$")


@dataclass
class Status:
    running: bool
    data_dir: str
    pid: int | None = None
    api: str | None = None
    metrics: str | None = None
    figures: dict[str, Any] = field(default_factory=dict)
    last_errors: list[dict[str, Any]] = field(default_factory=list)  # oldest first
    error: str | None = None  # the metrics port could not be read

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def holder(folder: Path) -> str | None:
    """The lock's text if a server holds ``folder`` now, else None."""
    try:
        fd = os.open(folder / LOCK_FILE, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return os.pread(fd, 512, 0).decode("utf-8", "replace").strip()
        fcntl.flock(fd, fcntl.LOCK_UN)  # free: nobody serves it
        return None
    finally:
        os.close(fd)


def status(folder: Path, timeout: float = 5.0) -> Status:
    text = holder(folder)
    if text is None:
        return Status(running=False, data_dir=str(folder))
    found = _HOLDER.match(text)
    if found is None:  # another command holds it (forget)
        return Status(running=True, data_dir=str(folder), error=f"held by {text}")
    pid, api, metrics = int(found.group(1)), found.group(2), found.group(3)
    now = Status(running=True, data_dir=str(folder), pid=pid, api=api, metrics=metrics)
    if metrics is None:
        return now
    try:
        reply = httpx.get(f"{metrics}/metrics", timeout=timeout)
        reply.raise_for_status()
    except httpx.HTTPError as exc:
        now.error = f"cannot read {metrics}/metrics: {exc}"
        return now
    now.figures = figures(reply.text)
    try:  # a server from before GET /errors answers it with its metrics: none then
        errors = httpx.get(f"{metrics}/errors", timeout=timeout).json().get("errors")
    except (httpx.HTTPError, ValueError, AttributeError):
        errors = None
    if isinstance(errors, list):
        now.last_errors = [line for line in errors if isinstance(line, dict)]
    return now


def figures(text: str) -> dict[str, Any]:
    """The figures an operator looks at first, from one scrape."""
    total: dict[str, float] = {}
    five_xx = 0.0
    refusals: dict[str, float] = {}
    recent: dict[str, float] = {}
    doors: dict[str, dict[str, float]] = {}
    version = None
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            total[sample.name] = total.get(sample.name, 0.0) + sample.value
            if sample.name == "pairchat_http_requests_total" and sample.labels.get(
                "status", ""
            ).startswith("5"):
                five_xx += sample.value
            if sample.name == "pairchat_rate_limit_refusals_total":
                refusals[sample.labels.get("limit", "")] = sample.value
            if sample.name == "pairchat_messages_sent_recent":
                recent[sample.labels.get("window", "")] = sample.value
            if sample.name == "pairchat_server_info":
                version = sample.labels.get("version")
            door = sample.labels.get("door")
            if door is not None and sample.name in _DOOR_FIGURES:
                doors.setdefault(door, {})[_DOOR_FIGURES[sample.name]] = sample.value
    started = total.get("pairchat_start_time_seconds")
    return {
        "version": version,
        "uptime_seconds": None if started is None else round(time.time() - started, 1),
        "workers": int(total.get("pairchat_workers", 0)),
        "held_waits": int(total.get("pairchat_held_waits", 0)),
        "open_streams": int(total.get("pairchat_open_streams", 0)),
        "messages_sent": int(total.get("pairchat_messages_sent_total", 0)),
        "messages_last_minute": int(recent.get("1m", 0)),
        "messages_last_hour": int(recent.get("1h", 0)),
        "requests": int(total.get("pairchat_http_requests_total", 0)),
        "server_errors": int(five_xx),
        "rate_limit_refusals": {k: int(v) for k, v in sorted(refusals.items())},
        "disk_free_bytes": int(total.get("pairchat_disk_free_bytes", 0)),
        "data_folder_bytes": int(total.get("pairchat_data_folder_bytes", 0)),
        "pair_files": int(total.get("pairchat_pair_files", 0)),
        "password_checks_running": int(total.get("pairchat_password_checks_running", 0)),
        "password_checks_queued": int(total.get("pairchat_password_checks_queued", 0)),
        "doors": {
            door: {
                "sessions_open": int(found.get("open", 0)),
                "sessions_started": int(found.get("started", 0)),
                "uptime_seconds": (
                    None if "since" not in found else round(time.time() - found["since"], 1)
                ),
            }
            for door, found in sorted(doors.items())
        },
    }


_DOOR_FIGURES = {
    "pairchat_door_sessions": "open",
    "pairchat_door_sessions_started_total": "started",
    "pairchat_door_start_time_seconds": "since",
}


def lines(now: Status) -> list[str]:
    """The one screen for a human."""
    if not now.running:
        return [f"no pairchat server is serving {now.data_dir}"]
    if now.pid is None:
        return [f"{now.data_dir} is busy: {now.error}"]
    out = [f"pairchat server pid {now.pid} serving {now.data_dir} on {now.api}"]
    if now.metrics is None:
        out.append("no figures: start it with --metrics-port to see them here")
        return out
    if now.error is not None:
        out.append(now.error)
        return out
    f = now.figures
    refused = ", ".join(f"{k} {v}" for k, v in f["rate_limit_refusals"].items()) or "none"
    out += [
        f"version        {f['version']}",
        f"uptime         {_duration(f['uptime_seconds'])}",
        f"workers        {f['workers']}",
        f"online         {f['held_waits']} held waits, {f['open_streams']} event streams",
        f"messages       {f['messages_last_minute']} in the last minute, "
        f"{f['messages_last_hour']} in the last hour",
        f"since start    {f['messages_sent']} messages sent, {f['requests']} requests, "
        f"{f['server_errors']} answered 5xx",
        f"rate limited   {refused}",
        f"password       {f['password_checks_running']} checks running, "
        f"{f['password_checks_queued']} queued",
        f"doors          {_doors(f['doors'])}",
        f"disk           {_bytes(f['disk_free_bytes'])} free; data folder "
        f"{_bytes(f['data_folder_bytes'])} in {f['pair_files']} conversation files",
        f"metrics        {now.metrics}/metrics",
    ]
    out.append(f"last errors    {'none' if not now.last_errors else ''}".rstrip())
    for line in now.last_errors[-LAST_ERRORS_SHOWN:]:
        out.append(f"  {_error_line(line)}")
    return out


LAST_ERRORS_SHOWN = 5
"""Error lines on the human's screen (``--json`` has all the server sent, up to 10)."""


def _error_line(line: dict[str, Any]) -> str:
    """``2026-12-07 11:40:02 pid 4711 GET /send_message/bob 503 0.4 ms [request …]``."""
    try:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(line["time"])))
    except (KeyError, TypeError, ValueError, OverflowError):
        when = "?"
    text = "".join(c if c.isprintable() else "?" for c in str(line.get("message", "")))
    rid = line.get("request_id")
    return f"{when} pid {line.get('pid', '?')} {text[:200]}" + (f" [request {rid}]" if rid else "")


def _doors(doors: dict[str, dict[str, Any]]) -> str:
    """``ssh 3 open, 41 since start, up 2d 01:02:03; web …`` (a door not running: down)."""
    if not doors:
        return "none"
    said = []
    for door, found in doors.items():
        up = found["uptime_seconds"]
        state = "down" if up is None else f"up {_duration(up)}"
        said.append(
            f"{door} {found['sessions_open']} open, {found['sessions_started']} since start, "
            f"{state}"
        )
    return "; ".join(said)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "unknown"
    whole = int(seconds)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    return (f"{days}d " if days else "") + f"{hours:02}:{minutes:02}:{secs:02}"


def _bytes(count: int) -> str:
    size = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.1f} {unit}" if unit != "B" else f"{int(size)} B"
        size /= 1024
    return f"{count} B"
