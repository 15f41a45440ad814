"""Issue 5 (e): the TUI opening a 10,000- and a 100,000-message conversation, headless.

The server (auth on) gets a pair whose file is seeded with N rows by sqlite3,
then one message sent through the API so the friend list knows the pair. Each
opening runs in a fresh child process (``python -m bench.tui_open``) so its
memory is the TUI's alone: the real app from ``tui.app.make_app`` under
Textual's headless ``run_test`` at 80x24, signed in with a saved token. Timed:
app start until the friend list shows the peer, and Enter on the peer until the
newest message is laid out in the chat pane. Memory: the child's VmRSS then
and its peak (VmHWM). Baseline: the same opening of a 100-message conversation
(one page) on the same server.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench import api
from bench.client import Connection
from bench.history import seed
from bench.report import Table, Target, fmt, ms, ratio
from bench.server import REPO, Server, _status_field
from bench.settings import Settings

REPEATS = 3
"""Fresh child processes per size; the table shows the medians."""
BASELINE = 100
"""One page (``tui.core.sync.PAGE``): the same drawing work as any longer chat's tail."""
TARGET_OPEN_100K = Target("<=", 300, " ms")
TARGET_RSS_100K = Target("<=", 150, " MiB")


async def prepare_pairs(
    server: Server, sizes: list[int] | tuple[int, ...], prefix: str = "reader"
) -> dict[int, tuple[str, str, str, str]]:
    """For each size: (reader, peer, reader's token, peer's token) of a pair holding
    that many messages, the reader having added the peer as a friend."""
    pairs: dict[int, tuple[str, str, str, str]] = {}
    names = [n for size in sizes for n in (f"{prefix}{size}", f"peer{prefix}{size}")]
    tokens = await api.register_many(server.host, server.port, names, concurrency=4)
    for size in sizes:
        reader, peer = f"{prefix}{size}", f"peer{prefix}{size}"
        conn = Connection(server.host, server.port, tokens[reader])
        await api.create_pair(conn, reader, peer)
        await conn.post("/add_friend", {"username": peer})
        seed(
            server.data_dir / f"{min(reader, peer)}_{max(reader, peer)}.db", size - 1, reader, peer
        )
        await api.send(conn, reader, peer, f"the newest of {size} messages")
        await conn.close()
        pairs[size] = (reader, peer, tokens[reader], tokens[peer])
    return pairs


def _open_in_child(url: str, reader: str, peer: str, token: str, size: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="pairchat-tui-") as config_dir:
        cmd = [sys.executable, "-m", "bench.tui_open", url, reader, peer, token, str(size)]
        cmd.append(config_dir)
        done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"TUI child failed:\n{done.stderr[-3000:]}")
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


async def run(settings: Settings) -> Table:
    sizes = [BASELINE, 10_000, 100_000]
    table = Table(
        "(e) TUI opening a long conversation (headless, 80x24)",
        [
            "messages",
            "app start -> friends",
            "Enter -> newest shown",
            f"vs {BASELINE} msgs",
            "RSS",
            "peak RSS",
            "target",
            "result",
        ],
    )
    with Server(settings.data_dir("tui"), open_mode=False) as server:
        pairs = await prepare_pairs(server, sizes)
        runs: dict[int, list[dict[str, float]]] = {size: [] for size in sizes}
        for _ in range(settings.count(REPEATS, 1)):
            for size in sizes:  # interleaved, so a noisy second hits every size alike
                reader, peer, token, _ = pairs[size]
                runs[size].append(
                    await asyncio.to_thread(_open_in_child, server.url, reader, peer, token, size)
                )
        results = {size: _median(found) for size, found in runs.items()}
    base = results[BASELINE]["open"]
    for size in sizes:
        r = results[size]
        cells = (
            f"{size:,}",
            ms(r["start"]),
            ms(r["open"]),
            "1.00x (baseline)" if size == BASELINE else ratio(r["open"] / base),
            f"{fmt(r['rss'])} MiB",
            f"{fmt(r['peak'])} MiB",
        )
        if size == 100_000:
            table.check_many(
                *cells,
                checks=[
                    ("open", "TUI opens 100k", r["open"] * 1000, TARGET_OPEN_100K),
                    ("peak", "TUI peak RSS at 100k", r["peak"], TARGET_RSS_100K),
                ],
            )
        else:
            table.add(*cells)
    table.note(
        "the chat fetches only its tail (a page) to open; older pages come on PageUp; "
        f"each opening in a fresh process (Python + Textual start included in 'app start'); "
        f"medians of {settings.count(REPEATS, 1)} openings per size, interleaved"
    )
    return table


def _median(found: list[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.median(r[key] for r in found) for key in found[0]}


# -- the child process ------------------------------------------------------------


async def _child(url: str, reader: str, peer: str, token: str, size: int, config_dir: Path) -> None:
    started = time.perf_counter()
    from textual.pilot import Pilot

    from tui.app import make_app
    from tui.config import Config
    from tui.screens.main import MainScreen
    from tui.widgets.chat_log import ChatLog
    from tui.widgets.friend_list import FriendList

    config = Config(server=url, user=reader, config_dir=config_dir)
    config.save_session(reader, token)
    app = make_app(config)
    newest = f"the newest of {size} messages"

    async def until(pilot: Pilot[None], ready: Callable[[], object], what: str) -> None:
        deadline = time.perf_counter() + 30
        while not ready():
            if time.perf_counter() > deadline:
                raise TimeoutError(f"waiting for {what}")
            await pilot.pause(0.002)

    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, MainScreen), "the main screen")
        friends = app.screen.query_one(FriendList)
        await until(pilot, lambda: peer in friends.friends, "the peer listed")
        listed = time.perf_counter()
        log = app.screen.query_one(ChatLog)
        await pilot.press("enter")
        await until(pilot, lambda: any(newest in line for line in log.screen_lines()), "newest")
        shown = time.perf_counter()
        rss = _kib("VmRSS") / 1024
        peak = _kib("VmHWM") / 1024
    result = {"start": listed - started, "open": shown - listed, "rss": rss, "peak": peak}
    print(json.dumps(result))


def _kib(field: str) -> int:
    import os

    value = _status_field(os.getpid(), field)
    return int(value.split()[0]) if value else 0


def main(argv: list[str]) -> None:
    url, reader, peer, token, size, config_dir = argv
    asyncio.run(_child(url, reader, peer, token, int(size), Path(config_dir)))


if __name__ == "__main__":
    main(sys.argv[1:])
