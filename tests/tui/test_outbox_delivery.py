"""Never lose a message: the server goes away, comes back, the app restarts.

These use the real ``pairchat-server`` program in a child process, so stopping it
really closes every connection.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support import ServerProcess, register
from tui.screens.main import MainScreen
from tui.widgets.chat_log import ChatLog
from tui.widgets.composer import Composer
from tui.widgets.status_bar import StatusBar

from .conftest import api, app_for, open_chat, type_text, wait_for

pytestmark = pytest.mark.anyio


def start_with_users(
    server_process: Callable[..., ServerProcess],
) -> tuple[ServerProcess, dict[str, str]]:
    proc = server_process()
    users = {name: register(proc.url, name) for name in ("alice", "bob")}
    with api(proc.url, "alice", users["alice"]) as alice:
        alice.add_friend("bob")
    return proc, users


def history(proc: ServerProcess, users: dict[str, str]) -> list[str]:
    with api(proc.url, "bob", users["bob"]) as bob:
        return [m.text for m in bob.history("alice").messages]


def outbox_texts(folder: Path) -> list[str]:
    path = folder / "outbox-alice.json"
    if not path.exists():
        return []
    return [item["text"] for item in json.loads(path.read_text())["items"]]


async def test_offline_send_is_delivered_exactly_once_when_the_server_returns(
    server_process: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    proc, users = start_with_users(server_process)
    app = app_for(proc.url, tmp_path, user="alice", token=users["alice"])
    async with app.run_test(size=(80, 24)) as pilot:
        log = await open_chat(pilot, app, "bob")

        proc.stop()
        await type_text(pilot, "typed while the server is down")
        await pilot.press("enter")
        assert app.screen.query_one(Composer).text == ""
        await wait_for(pilot, lambda: log.pending, "the message shown as pending")
        assert any("pending" in line for line in log.text_lines())
        assert outbox_texts(tmp_path) == ["typed while the server is down"]
        status = app.screen.query_one(StatusBar)
        await wait_for(
            pilot,
            lambda: "reconnecting" in status.connection_text or status.state == "offline",
            "the status line to show the outage",
        )
        assert status.pending == 1

        proc.start()
        await wait_for(
            pilot,
            lambda: history(proc, users) == ["typed while the server is down"],
            "delivery after the server came back",
            timeout=40,
        )
        await wait_for(pilot, lambda: not log.pending, "the pending marker to clear")
        await wait_for(pilot, lambda: status.connection_text == "connected", "connected again")
        shown = [line for line in log.text_lines() if "typed while the server is down" in line]
        assert len(shown) == 1
        assert outbox_texts(tmp_path) == []
        assert status.pending == 0
    assert history(proc, users) == ["typed while the server is down"]


async def test_the_outbox_survives_an_app_restart(
    server_process: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    proc, users = start_with_users(server_process)
    first = app_for(proc.url, tmp_path, user="alice", token=users["alice"])
    async with first.run_test(size=(80, 24)) as pilot:
        await open_chat(pilot, first, "bob")
        proc.stop()
        await type_text(pilot, "one")
        await pilot.press("enter")
        await type_text(pilot, "two")
        await pilot.press("enter")
        await wait_for(pilot, lambda: outbox_texts(tmp_path) == ["one", "two"], "saved outbox")
    # Quit while offline; start again, still offline: the saved token and outbox are used.
    second = app_for(proc.url, tmp_path)
    async with second.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(second.screen, MainScreen), "signed in again")
        status = second.screen.query_one(StatusBar)
        assert status.pending == 2
        proc.start()
        await wait_for(
            pilot, lambda: history(proc, users) == ["one", "two"], "delivery in order", timeout=40
        )
        await wait_for(pilot, lambda: status.pending == 0, "the outbox drained")
        await pilot.press("enter")  # open bob: each message once, none pending
        log = second.screen.query_one(ChatLog)
        await wait_for(pilot, lambda: log.peer == "bob" and log.message_ids, "bob's chat")
        texts = [line.strip() for line in log.text_lines()]
        assert texts.count("one") == 1 and texts.count("two") == 1
        assert not log.pending
    assert outbox_texts(tmp_path) == []
    assert history(proc, users) == ["one", "two"]


async def test_a_full_outbox_refuses_one_more_and_the_text_stays_in_the_box(
    server_process: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    """Offline, the outbox takes MAX_OUTBOX_PER_CHAT items for one person and MAX_OUTBOX in
    all; one more is refused with a notice that says so, and the composer keeps the text
    (before: it took every message, however many, into one file rewritten on each)."""
    from tui.core.outbox import MAX_OUTBOX, MAX_OUTBOX_PER_CHAT, Outbox

    proc, users = start_with_users(server_process)
    app = app_for(proc.url, tmp_path, user="alice", token=users["alice"])
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await open_chat(pilot, app, "bob")
        composer = app.screen.query_one(Composer)
        status = app.screen.query_one(StatusBar)
        proc.stop()
        other = Outbox(tmp_path / "outbox-alice.json")  # a second instance, also offline
        for number in range(MAX_OUTBOX_PER_CHAT - 1):
            other.add("bob", f"earlier {number}")
        await type_text(pilot, "the last that fits")
        await pilot.press("enter")
        await wait_for(pilot, lambda: composer.text == "", "the last one queued")
        await type_text(pilot, "one too many")
        await pilot.press("enter")
        await wait_for(pilot, lambda: app._notifications, "a notice")
        notice = next(iter(app._notifications))
        assert notice.title == "Not sent: the outbox is full"
        assert f"{MAX_OUTBOX_PER_CHAT} messages to bob are waiting to be sent" in notice.message
        assert composer.text == "one too many", "nothing typed is lost"
        texts = outbox_texts(tmp_path)
        assert len(texts) == MAX_OUTBOX_PER_CHAT and texts[-1] == "the last that fits"
        await wait_for(pilot, lambda: status.pending == MAX_OUTBOX_PER_CHAT, "the count")

        # In all: other chats fill the rest; a message to bob is then refused too.
        app.clear_notifications()
        other.remove(other.items[0].client_id)
        for number in range(MAX_OUTBOX - MAX_OUTBOX_PER_CHAT + 1):
            other.add(f"friend{number % 7}", f"elsewhere {number}")
        await pilot.press("enter")
        await wait_for(pilot, lambda: app._notifications, "a notice")
        notice = next(iter(app._notifications))
        assert f"{MAX_OUTBOX} messages are waiting to be sent" in notice.message, notice.message
        assert composer.text == "one too many"
        assert len(outbox_texts(tmp_path)) == MAX_OUTBOX


def test_the_outbox_bound_holds_across_two_instances(tmp_path: Path) -> None:
    """The bound is checked on the file under its lock: an instance that read the outbox
    before another filled it still cannot add past it."""
    from tui.core.outbox import MAX_OUTBOX_PER_CHAT, Outbox, OutboxFull

    path = tmp_path / "outbox-alice.json"
    first, second = Outbox(path), Outbox(path)
    for number in range(MAX_OUTBOX_PER_CHAT):
        second.add("bob", f"{number}")
    assert len(first) == 0  # it has not looked again
    with pytest.raises(OutboxFull) as full:
        first.add("bob", "one more")
    assert not full.value.in_all and full.value.waiting == MAX_OUTBOX_PER_CHAT
    second.fail(second.items[0].client_id, "blocked")
    refusal = first.full_for("bob")
    assert refusal is not None and "1 of them was refused: F7 lists them" in refusal.message
    assert first.full_for("carol") is None
    first.add("carol", "another chat still has room")
    assert len(Outbox(path)) == MAX_OUTBOX_PER_CHAT + 1


FORGET = [sys.executable, "-m", "backend.server.cli", "forget", "alice", "bob", "--yes"]


async def test_a_pair_erased_by_the_operator_is_reloaded_when_the_server_returns(
    server_process: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    proc, users = start_with_users(server_process)
    with api(proc.url, "bob", users["bob"]) as bob:
        for number in range(5):
            bob.send("alice", f"before {number}")
    app = app_for(proc.url, tmp_path / "cfg", user="alice", token=users["alice"])
    async with app.run_test(size=(80, 24)) as pilot:
        log = await open_chat(pilot, app, "bob")
        await wait_for(pilot, lambda: len(log.message_ids) == 5, "the history")
        proc.stop()
        erased = subprocess.run(
            [*FORGET, "--data-dir", str(proc.data_dir)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert erased.returncode == 0, erased.stderr
        proc.start()
        with api(proc.url, "bob", users["bob"]) as bob:
            bob.send("alice", "after the erase")  # id 1 again
        await wait_for(
            pilot,
            lambda: (
                [line.strip() for line in log.text_lines() if "after" in line or "before" in line]
                == ["after the erase"]
            ),
            "only the new conversation shown",
            timeout=30,
        )
