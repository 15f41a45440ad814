"""(k) Key bursts: what routing each key only after the app settled costs (issue 18).

The real app (``tui.app.make_app``) under Textual's headless ``run_test`` at 80x24,
signed in against a real server, with a chat open and the focus in the message box.
A burst of ``KEYS`` characters is queued at once (as tmux ``send-keys``, a fast
typist or an unbracketed paste delivers them: all before the app handles one) and
timed until the message box holds all of them. Two ways, interleaved, in the same
run: the app's ordered input (:mod:`tui.input_order`, the default) and Textual's
own routing (the ordered input stopped: each key posted to the focus of the
moment, the old behaviour and the baseline).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench.report import Table, Target, fmt, ratio
from bench.server import Server
from bench.settings import Settings
from bench.tui_open import prepare_pairs

KEYS = 1_000
REPEATS = 3
TARGET_KEYS_PER_S = Target(">=", 300, " keys/s")
"""A 1,000-character unbracketed paste lands in under ~3 s; a typist makes ~10 keys/s."""


async def _burst_seconds(url: str, reader: str, peer: str, token: str, ordered: bool) -> float:
    from textual import events
    from textual.pilot import Pilot

    from tui.app import make_app
    from tui.config import Config
    from tui.screens.main import MainScreen
    from tui.widgets.composer import Composer
    from tui.widgets.friend_list import FriendList

    async def until(pilot: Pilot[None], ready: Callable[[], object], what: str) -> None:
        deadline = time.perf_counter() + 60
        while not ready():
            if time.perf_counter() > deadline:
                raise TimeoutError(f"waiting for {what}")
            await pilot.pause(0.001)

    with tempfile.TemporaryDirectory(prefix="pairchat-keys-") as config_dir:
        config = Config(server=url, user=reader, config_dir=Path(config_dir))
        config.save_session(reader, token)
        app = make_app(config)
        async with app.run_test(size=(80, 24)) as pilot:
            await until(pilot, lambda: isinstance(app.screen, MainScreen), "the main screen")
            friends = app.screen.query_one(FriendList)
            await until(pilot, lambda: friends.highlighted_username == peer, "the friend")
            await pilot.press("enter")
            composer = app.screen.query_one(Composer)
            await until(pilot, lambda: app.focused is composer, "the message box")
            if not ordered:
                app.input.stop()
            driver = app._driver
            assert driver is not None
            text = ("abcdefghij" * (KEYS // 10 + 1))[:KEYS]
            started = time.perf_counter()
            for char in text:
                event = events.Key(char, char)
                event.set_sender(app)
                driver.send_message(event)
            await until(pilot, lambda: len(composer.text) >= KEYS, "the burst")
            seconds = time.perf_counter() - started
            assert composer.text == text, "every key, in order"
            composer.clear()  # no draft left behind
    return seconds


async def run(settings: Settings) -> Table:
    table = Table(
        f"(k) TUI: a burst of {KEYS:,} keys into the message box (headless, 80x24)",
        ["routing", "burst median", "keys/s", "vs Textual's", "target", "result"],
    )
    found: dict[bool, list[float]] = {False: [], True: []}
    with Server(settings.data_dir("tui-keys"), open_mode=False) as server:
        reader, peer, token, _ = (await prepare_pairs(server, (100,), prefix="keys"))[100]
        for _ in range(settings.count(REPEATS, 1)):
            for ordered in (False, True):  # interleaved
                found[ordered].append(
                    await _burst_seconds(server.url, reader, peer, token, ordered)
                )
    base = statistics.median(found[False])
    for ordered, label in ((False, "Textual's own (baseline)"), (True, "ordered (pairchat)")):
        seconds = statistics.median(found[ordered])
        cells = (label, f"{fmt(seconds * 1000)} ms", fmt(KEYS / seconds))
        if ordered:
            table.check(
                *cells,
                ratio(seconds / base),
                label="ordered key burst",
                value=KEYS / seconds,
                target=TARGET_KEYS_PER_S,
            )
        else:
            table.add(*cells, "1.00x (baseline)")
    table.note(
        f"{settings.count(REPEATS, 1)} bursts each way, interleaved; 'vs' is the time ratio "
        "(above 1: the ordered routing is slower by that factor)"
    )
    return table
