"""(e) continued: the TUI live with 20,000 messages loaded, against 100 loaded in the same run.

The server (auth on) gets two pairs, seeded with 100 and 20,000 rows by sqlite3.
Each run is a fresh child process (``python -m bench.tui_live``): the real app
under Textual's headless ``run_test`` at 80x24 opens the chat, loads the whole
conversation (the search path: pages of 1,000 back to the first message),
scrolls to the newest, focuses the composer, then measures:

- **incoming → on screen**: from just before the peer's ``send_message`` (plain
  httpx in a thread) until the message is among the rows the chat view draws.
  This is the whole path: the send, the server waking the client's one
  long-poll on the change feed, the ``after_id`` fetch, the layout, the frame;
- **key echo**: from a key event reaching the app until the first frame drawn
  after the composer holds the character (the app's ``_display`` is wrapped to
  note when each frame goes to the terminal).

The baseline is the same client with 100 messages loaded, measured in the same
run (interleaved), so the ratio says what loading 200 times more costs.
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

from bench.report import Table, Target, ms, ratio
from bench.server import REPO, Server
from bench.settings import Settings
from bench.tui_open import prepare_pairs

SIZES = (100, 20_000)
REPEATS = 2
INCOMING = 15
KEYS = 40
TARGET_INCOMING = Target("<=", 200, " ms")
TARGET_ECHO = Target("<=", 50, " ms")


def _child_run(url: str, pair: tuple[str, str, str, str], size: int) -> dict[str, list[float]]:
    with tempfile.TemporaryDirectory(prefix="pairchat-tui-live-") as config_dir:
        cmd = [sys.executable, "-m", "bench.tui_live", url, *pair, str(size), config_dir]
        done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise RuntimeError(f"TUI child failed:\n{done.stderr[-3000:]}")
    result: dict[str, list[float]] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run(settings: Settings) -> Table:
    table = Table(
        "(e) TUI live with many messages loaded (headless, 80x24)",
        [
            "loaded",
            "incoming -> screen p50",
            "p90",
            "vs 100",
            "key echo p50",
            "p90",
            "vs 100",
            "target",
            "result",
        ],
    )
    with Server(settings.data_dir("tui-live"), open_mode=False) as server:
        pairs = await prepare_pairs(server, SIZES, prefix="live")
        found: dict[int, dict[str, list[float]]] = {s: {"incoming": [], "echo": []} for s in SIZES}
        for _ in range(settings.count(REPEATS, 1)):
            for size in SIZES:  # interleaved
                result = await asyncio.to_thread(_child_run, server.url, pairs[size], size)
                for key in found[size]:
                    found[size][key].extend(result[key])
    base = {key: statistics.median(values) for key, values in found[SIZES[0]].items()}
    for size in SIZES:
        incoming, echo = found[size]["incoming"], found[size]["echo"]
        cells = (
            f"{size:,}",
            ms(statistics.median(incoming)),
            ms(_p(incoming, 0.9)),
            "1.00x (baseline)"
            if size == SIZES[0]
            else ratio(statistics.median(incoming) / base["incoming"]),
            ms(statistics.median(echo)),
            ms(_p(echo, 0.9)),
            "1.00x (baseline)"
            if size == SIZES[0]
            else ratio(statistics.median(echo) / base["echo"]),
        )
        if size == SIZES[-1]:
            table.check_many(
                *cells,
                checks=[
                    (
                        "incoming",
                        "incoming at 20k (p90)",
                        _p(incoming, 0.9) * 1000,
                        TARGET_INCOMING,
                    ),
                    ("echo", "key echo at 20k (p90)", _p(echo, 0.9) * 1000, TARGET_ECHO),
                ],
            )
        else:
            table.add(*cells)
    table.note(
        f"{settings.count(REPEATS, 1)} fresh client processes per size, interleaved; "
        f"{INCOMING} incoming messages and {KEYS} keys each; the incoming figure includes "
        "the send request, the feed's wake-up and the after_id fetch"
    )
    return table


# -- the child process ------------------------------------------------------------


async def _child(
    url: str, reader: str, peer: str, token: str, peer_token: str, size: int, config_dir: Path
) -> None:
    import httpx
    from textual import events
    from textual.pilot import Pilot

    from tui.app import make_app
    from tui.config import Config
    from tui.screens.main import MainScreen
    from tui.widgets.chat_log import ChatLog
    from tui.widgets.chat_pane import ChatPane
    from tui.widgets.composer import Composer
    from tui.widgets.friend_list import FriendList

    config = Config(server=url, user=reader, config_dir=config_dir)
    config.save_session(reader, token)
    app = make_app(config)

    async def until(pilot: Pilot[None], ready: Callable[[], object], what: str) -> None:
        deadline = time.perf_counter() + 120
        while not ready():
            if time.perf_counter() > deadline:
                raise TimeoutError(f"waiting for {what}")
            await pilot.pause(0.001)

    sender = httpx.Client()  # made once: a new client costs ~50 ms (its TLS context)

    def send(text: str) -> None:
        reply = sender.post(
            f"{url}/send_message/{reader}",
            data={"author": peer, "message": text},
            headers={"Authorization": f"Bearer {peer_token}"},
        )
        reply.raise_for_status()

    incoming: list[float] = []
    echo: list[float] = []
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, MainScreen), "the main screen")
        friends = app.screen.query_one(FriendList)
        await until(pilot, lambda: peer in friends.friends, "the peer listed")
        friends.highlight(peer)
        await pilot.press("enter")
        log = app.screen.query_one(ChatLog)
        pane = app.screen.query_one(ChatPane)
        await until(pilot, lambda: log.conversation and log.conversation.loaded, "the tail")
        core = pane.core
        await core.search(peer, "seeded message number 0 ", None, lambda _: None)
        await until(pilot, lambda: len(log.message_ids) >= size, "everything loaded")
        log.action_scroll_end()
        composer = app.screen.query_one(Composer)
        composer.focus()
        await pilot.pause(0.5)
        for number in range(INCOMING):
            text = f"live message {number}"
            started = time.perf_counter()
            await asyncio.to_thread(send, text)
            while not any(text in row for row in log.screen_lines()):
                await asyncio.sleep(0.001)  # not pilot.pause: it waits for idle each time
            incoming.append(time.perf_counter() - started)
            await pilot.pause(0.05)
        driver = app._driver
        assert driver is not None
        frames: list[float] = []
        display = app._display

        def drawn(screen: object, update: object) -> None:  # the frame reaches the terminal
            display(screen, update)  # type: ignore[arg-type]
            frames.append(time.perf_counter())

        app._display = drawn  # type: ignore[method-assign]
        for number in range(KEYS):
            before = composer.text
            key = events.Key("x", "x")
            key.set_sender(app)
            started = time.perf_counter()
            driver.send_message(key)
            while composer.text == before:
                await asyncio.sleep(0)
            changed = time.perf_counter()
            while not frames or frames[-1] < changed:
                await asyncio.sleep(0.0005)
            echo.append(frames[-1] - started)
            await pilot.pause(0.02)
            if number % 10 == 9:
                composer.clear()
    sender.close()
    print(json.dumps({"incoming": incoming, "echo": echo}))


def main(argv: list[str]) -> None:
    url, reader, peer, token, peer_token, size, config_dir = argv
    asyncio.run(_child(url, reader, peer, token, peer_token, int(size), Path(config_dir)))


if __name__ == "__main__":
    main(sys.argv[1:])
