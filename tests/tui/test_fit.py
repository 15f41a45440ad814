"""Every screen and dialog fits and is centred at 80x24, and stays usable at 60x20.

Found by a user at 80x24 in tmux: the account dialog cut its labels ("Sign out
everywher") and showed its switches by colour only; "Change password" opened at the
top-left; toasts covered the message box while one typed; the friend list's footer
ended at "f7 Unsent ^" (no Quit, no F1); "Requests (N)" wrapped to column 0. Each test
below failed on that code. The snapshots are the pictures to check by eye.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from textual.containers import Vertical
from textual.geometry import Region
from textual.pilot import Pilot
from textual.screen import ModalScreen, Screen
from textual.widget import Widget
from textual.widgets import Button, Footer, Input, Label, Static, Switch

from tests.support import LiveServer
from tui.app import PairchatApp
from tui.screens.account import AccountScreen, ChangePasswordDialog
from tui.screens.claim import ClaimScreen
from tui.screens.dialogs import (
    AddFriendDialog,
    BlockDialog,
    ConfirmDialog,
    LinksDialog,
    ReactionPicker,
    RequestsDialog,
    SignOutDialog,
    UnblockDialog,
    UnsentDialog,
)
from tui.screens.help import HelpScreen
from tui.screens.main import MainScreen
from tui.screens.signin import SignInScreen
from tui.widgets.chat_log import ChatLog
from tui.widgets.chat_pane import SearchBar
from tui.widgets.composer import Composer
from tui.widgets.friend_list import REQUESTS, FriendList

from .conftest import api, app_for, befriend, fixed_clock, open_chat, screen_text, wait_for
from .conftest import settled as app_settled
from .test_snapshots import no_blink

SIZES = [(80, 24), (60, 20)]


# -- helpers -------------------------------------------------------------------------------
def with_a_request(server: LiveServer, users: dict[str, str]) -> None:
    """alice has friends bob and carol, and a message from dave, who is not one."""
    befriend(server, users, "alice", "bob", "carol")
    with api(server.url, "dave", users["dave"]) as dave:
        dave.send("alice", "hi, we have not met")


def alice(server: LiveServer, users: dict[str, str], tmp_path: Path) -> PairchatApp:
    return app_for(server.url, tmp_path, user="alice", token=users["alice"], clock=fixed_clock)


async def main_screen(pilot: Pilot[Any], app: PairchatApp) -> MainScreen:
    """The main screen, friends and the request row drawn."""
    await wait_for(pilot, lambda: isinstance(app.screen, MainScreen), "the main screen")
    screen = app.screen
    assert isinstance(screen, MainScreen)
    friends = screen.query_one(FriendList)
    await wait_for(pilot, lambda: "bob" in friends.friends and friends.requests, "the list")
    await wait_for(pilot, lambda: screen.status.state == "connected", "connected")
    return screen


def geometry(widget: Widget) -> tuple[Region, Region]:
    """(where the widget is laid out, what of it is on screen)."""
    found = widget.screen.find_widget(widget)
    return found.region, found.visible_region


def centred(screen: Screen[Any], box: Widget) -> None:
    """``box`` is in the middle of the screen (less its footer), to a cell."""
    region, visible = geometry(box)
    assert visible == region, f"{box} is cut: {region} shows only {visible}"
    width, height = screen.size
    footer = sum(f.outer_size.height for f in screen.query(Footer) if f.parent is screen)
    left, right = region.x, width - region.right
    top, bottom = region.y, height - footer - region.bottom
    assert abs(left - right) <= 1, f"{box} at {region}: {left} columns left, {right} right"
    assert abs(top - bottom) <= 1, f"{box} at {region}: {top} rows above, {bottom} below"


def nothing_cut(box: Widget) -> None:
    """Every label, text, button, switch and field in ``box`` is wholly on screen, and a
    label or button is as wide as its text."""
    kinds = (Label, Static, Button, Switch, Input)
    for widget in [box, *box.query("*")]:
        if not isinstance(widget, kinds) or not widget.display:
            continue
        region, visible = geometry(widget)
        assert visible == region, f"{widget} is cut: {region} shows only {visible}"
        if isinstance(widget, (Label, Button)):
            needed = widget.get_content_width(region.size, widget.screen.size)
            assert widget.content_region.width >= needed, (
                f"{widget} {str(widget.render())!r}: {widget.content_region.width} "
                f"columns for {needed}"
            )


async def quiet(pilot: Pilot[Any], screen: Screen[Any]) -> None:
    """Until the screen's own workers (loading keys, settings …) have finished."""

    def busy() -> list[object]:
        return [w for w in pilot.app.workers if w.node is screen and not w.is_finished]

    await wait_for(pilot, lambda: not busy(), f"{screen}'s workers")
    await pilot.pause()


def dialog_box(screen: Screen[Any]) -> Widget:
    return screen.query_one(".dialog") if screen.query(".dialog") else screen.query_one(Vertical)


# -- the account dialog --------------------------------------------------------------------
@pytest.mark.anyio
@pytest.mark.parametrize("size", SIZES)
async def test_the_account_dialog_cuts_no_label_and_says_on_or_off(
    server: LiveServer, users: dict[str, str], tmp_path: Path, size: tuple[int, int]
) -> None:
    with_a_request(server, users)
    with api(server.url, "alice", users["alice"]) as me:
        me.settings(typing=False)
    app = alice(server, users, tmp_path)
    async with app.run_test(size=size) as pilot:
        await main_screen(pilot, app)
        await pilot.press("f10")
        await wait_for(pilot, lambda: isinstance(app.screen, AccountScreen), "the account")
        screen = app.screen
        switches = list(screen.query(Switch))
        await wait_for(pilot, lambda: not any(s.disabled for s in switches), "the settings")
        await pilot.pause()
        nothing_cut(dialog_box(screen))
        centred(screen, dialog_box(screen))
        state = {s.id: str(screen.query_one(f"#{s.id}-state", Label).render()) for s in switches}
        assert state == {"read_receipts": "on", "typing": "off"}
        screen.query_one("#typing", Switch).focus()
        await pilot.press("enter")  # toggles it
        await wait_for(
            pilot,
            lambda: str(screen.query_one("#typing-state", Label).render()) == "on",
            "the words follow the switch",
        )
        text = "\n".join(screen_text(app))
        assert "Sign out everywhere" in text and "typing to them" in text, text


# -- every dialog is centred and cuts nothing ---------------------------------------------
DIALOGS: dict[str, Callable[[MainScreen], ModalScreen[Any]]] = {
    "account": lambda main: AccountScreen(main.core),
    "change password": lambda main: ChangePasswordDialog(main.core),
    "add friend": lambda main: AddFriendDialog(main.core),
    "block": lambda main: BlockDialog(main.core, "bob"),
    "unblock": lambda main: UnblockDialog(main.core),
    "unsent": lambda main: UnsentDialog(main.core),
    "sign out": lambda main: SignOutDialog(main.core),
    "links": lambda main: LinksDialog(["https://example.org/" + "long/" * 20, "https://x.y"]),
    "confirm": lambda main: ConfirmDialog("Delete this message? It goes for both of you."),
    "requests": lambda main: RequestsDialog(main.core),
    "react": lambda main: ReactionPicker("\u2764\ufe0f"),
}


@pytest.mark.anyio
@pytest.mark.parametrize("size", SIZES)
async def test_every_dialog_is_centred_and_cuts_nothing(
    server: LiveServer, users: dict[str, str], tmp_path: Path, size: tuple[int, int]
) -> None:
    with_a_request(server, users)
    app = alice(server, users, tmp_path)
    async with app.run_test(size=size) as pilot:
        main = await main_screen(pilot, app)
        for name, make in DIALOGS.items():
            dialog = make(main)
            await app.push_screen(dialog)
            await wait_for(pilot, lambda d=dialog: app.screen is d, name)  # type: ignore[misc]
            await quiet(pilot, dialog)
            box = dialog_box(dialog)
            centred(dialog, box)
            nothing_cut(box)
            app.pop_screen()
            await wait_for(pilot, lambda: app.screen is main, f"{name} closed")


@pytest.mark.anyio
async def test_change_password_opens_centred_over_the_account_and_stays_so(
    server: LiveServer, users: dict[str, str], tmp_path: Path
) -> None:
    with_a_request(server, users)
    app = alice(server, users, tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await main_screen(pilot, app)
        await pilot.press("f10")
        await wait_for(pilot, lambda: isinstance(app.screen, AccountScreen), "the account")
        app.screen.query_one("#change-password", Button).press()
        await wait_for(pilot, lambda: isinstance(app.screen, ChangePasswordDialog), "dialog")
        await pilot.pause()
        centred(app.screen, dialog_box(app.screen))
        for size in [(100, 30), (60, 20), (80, 24)]:
            await pilot.resize_terminal(*size)
            await wait_for(pilot, lambda s=size: app.screen.size == s, f"{size}")  # type: ignore[misc]
            await pilot.pause()
            centred(app.screen, dialog_box(app.screen))
            nothing_cut(dialog_box(app.screen))


@pytest.mark.anyio
@pytest.mark.parametrize("size", SIZES)
async def test_help_sign_in_and_claim_are_centred(
    server: LiveServer, users: dict[str, str], tmp_path: Path, size: tuple[int, int]
) -> None:
    with_a_request(server, users)
    app = alice(server, users, tmp_path)
    async with app.run_test(size=size) as pilot:
        await main_screen(pilot, app)
        await pilot.press("f1")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), "help")
        await pilot.pause()
        centred(app.screen, app.screen.query_one("#help-keys"))
    signed_out = app_for(server.url, tmp_path / "out", clock=fixed_clock)
    async with signed_out.run_test(size=size) as pilot:
        await wait_for(pilot, lambda: isinstance(signed_out.screen, SignInScreen), "sign-in")
        await pilot.pause()
        form = signed_out.screen.query_one("#signin-form")
        centred(signed_out.screen, form)
        nothing_cut(form)
        await signed_out.push_screen(ClaimScreen("a-ticket"))
        await wait_for(pilot, lambda: isinstance(signed_out.screen, ClaimScreen), "claim")
        await pilot.pause()
        form = signed_out.screen.query_one("#signin-form")
        centred(signed_out.screen, form)
        nothing_cut(form)


# -- toasts --------------------------------------------------------------------------------
def toasts(screen: Screen[Any]) -> list[Widget]:
    """The screen's toasts (Textual's system widgets, which queries do not find)."""
    racks = [w for w in screen.children if type(w).__name__ == "ToastRack"]
    return [w for r in racks for w in r.walk_children(Widget) if type(w).__name__ == "Toast"]


@pytest.mark.anyio
@pytest.mark.parametrize("size", SIZES)
async def test_toasts_never_cover_the_message_box(
    server: LiveServer, users: dict[str, str], tmp_path: Path, size: tuple[int, int]
) -> None:
    with_a_request(server, users)
    app = alice(server, users, tmp_path)
    async with app.run_test(size=size, notifications=True) as pilot:
        await open_chat(pilot, app, "bob")
        composer = app.screen.query_one(Composer)
        composer.focus()
        composer.text = "\n".join(f"line {n}" for n in range(10))  # the box at its tallest
        for n in range(4):
            app.notify(f"toast {n}: something long enough to take two lines", timeout=30)
        await wait_for(pilot, lambda: len(toasts(app.screen)) == 4, "four toasts")
        await pilot.pause()
        box = composer.region
        assert box.height == 7, "the message box grew to its tallest"
        shown = [geometry(t)[1] for t in toasts(app.screen)]
        assert any(shown), "the newest toasts are on screen"
        for toast in shown:  # (a toast the rack has no room for is shown nowhere: no area)
            assert not (toast.area and toast.overlaps(box)), f"a toast at {toast} covers {box}"


# -- footers -------------------------------------------------------------------------------
def footer_keys(screen: Screen[Any]) -> dict[str, str]:
    """The keys shown in full in the screen's footer: key -> description."""
    footer = screen.query_one(Footer)
    shown = {}
    for key in footer.query("FooterKey"):
        region, visible = geometry(key)
        if visible == region and region.width and region.right <= screen.size.width:
            shown[key.key] = key.description  # type: ignore[attr-defined]
    return shown


@pytest.mark.anyio
@pytest.mark.parametrize("size", SIZES)
async def test_the_footer_shows_help_and_quit_whatever_has_focus(
    server: LiveServer, users: dict[str, str], tmp_path: Path, size: tuple[int, int]
) -> None:
    with_a_request(server, users)
    app = alice(server, users, tmp_path)
    async with app.run_test(size=size) as pilot:
        await open_chat(pilot, app, "bob")
        screen = app.screen
        for name, widget in [
            ("friend list", screen.query_one(FriendList)),
            ("message box", screen.query_one(Composer)),
            ("messages", screen.query_one(ChatLog)),
        ]:
            widget.focus()
            await wait_for(pilot, lambda w=widget: w.has_focus, name)  # type: ignore[misc]
            await pilot.pause()
            await pilot.pause()
            shown = footer_keys(screen)
            assert "f1" in shown, f"{name}: F1 Help not in {shown} ({size})"
            if size == (80, 24):
                assert "ctrl+q" in shown, f"{name}: Quit not in {shown}"
        await pilot.press("ctrl+f")
        await wait_for(pilot, lambda: screen.query_one(SearchBar).has_focus, "the search")
        await pilot.pause()
        await pilot.pause()
        shown = footer_keys(screen)
        assert {"f1", "ctrl+q"} <= set(shown), f"search: {shown}"
        assert "Help" in screen_text(app)[-1]


# -- the friend list -----------------------------------------------------------------------
@pytest.mark.anyio
@pytest.mark.parametrize("size", SIZES)
async def test_the_requests_row_fits_its_column(
    server: LiveServer, users: dict[str, str], tmp_path: Path, size: tuple[int, int]
) -> None:
    with_a_request(server, users)
    app = alice(server, users, tmp_path)
    async with app.run_test(size=size) as pilot:
        screen = await main_screen(pilot, app)
        friends = screen.query_one(FriendList)
        await pilot.pause()
        rows = screen_text(app)
        column = friends.content_region.right  # the border right of the list is not its text
        at = next(i for i, row in enumerate(rows) if "Requests (1)" in row)
        second = rows[at + 1][:column]
        assert second.startswith("  ") and second.strip(), f"its second line: {second!r}"
        below = [row[:column].strip() for row in rows[at + 2 : friends.region.bottom]]
        assert not any(below), f"the row goes on below its two lines: {below}"
        index = friends.get_option_index(REQUESTS)
        assert friends.get_option_at_index(index).id == REQUESTS


# -- snapshots at 80x24 --------------------------------------------------------------------
def snapshot_app(server: LiveServer, users: dict[str, str], tmp_path: Path) -> PairchatApp:
    with_a_request(server, users)
    return alice(server, users, tmp_path)


async def settled(pilot: Pilot[Any]) -> None:
    await quiet(pilot, pilot.app.screen)
    no_blink(pilot)
    await app_settled(pilot.app)


def test_snapshot_fit_main_screen(
    snap_compare: Any, server: LiveServer, users: dict[str, str], tmp_path: Path
) -> None:
    app = snapshot_app(server, users, tmp_path)

    async def ready(pilot: Pilot[Any]) -> None:
        log = await open_chat(pilot, app, "bob")
        await wait_for(pilot, lambda: log.placeholder.startswith("No messages"), "chat open")
        friends = app.screen.query_one(FriendList)
        friends.focus()
        await wait_for(pilot, lambda: app.focused is friends, "the friend list focused")
        no_blink(pilot)
        await app_settled(app)
        await pilot.pause()

    assert snap_compare(app, terminal_size=(80, 24), run_before=ready)


def test_snapshot_fit_sign_in(snap_compare: Any, tmp_path: Path) -> None:
    app = app_for("http://127.0.0.1:9", tmp_path, clock=fixed_clock)

    async def ready(pilot: Pilot[Any]) -> None:
        await wait_for(pilot, lambda: app.focused is not None, "the username field focused")
        no_blink(pilot)
        await app_settled(app)

    assert snap_compare(app, terminal_size=(80, 24), run_before=ready)


def test_snapshot_fit_claim(snap_compare: Any, tmp_path: Path) -> None:
    app = app_for("http://127.0.0.1:9", tmp_path, clock=fixed_clock)

    async def ready(pilot: Pilot[Any]) -> None:
        await app.push_screen(ClaimScreen("a-ticket"))
        await settled(pilot)

    assert snap_compare(app, terminal_size=(80, 24), run_before=ready)


async def account_open(pilot: Pilot[Any], app: PairchatApp) -> None:
    """From start-up to the account dialog (F10) with its settings loaded."""
    await main_screen(pilot, app)
    await pilot.press("f10")
    await wait_for(pilot, lambda: isinstance(app.screen, AccountScreen), "the account")
    switches = list(app.screen.query(Switch))
    await wait_for(pilot, lambda: not any(s.disabled for s in switches), "the settings")


def test_snapshot_fit_account(
    snap_compare: Any, server: LiveServer, users: dict[str, str], tmp_path: Path
) -> None:
    app = snapshot_app(server, users, tmp_path)

    async def ready(pilot: Pilot[Any]) -> None:
        await account_open(pilot, app)
        await settled(pilot)

    assert snap_compare(app, terminal_size=(80, 24), run_before=ready)


def test_snapshot_fit_change_password(
    snap_compare: Any, server: LiveServer, users: dict[str, str], tmp_path: Path
) -> None:
    app = snapshot_app(server, users, tmp_path)

    async def ready(pilot: Pilot[Any]) -> None:
        await account_open(pilot, app)
        app.screen.query_one("#change-password", Button).press()
        await wait_for(pilot, lambda: isinstance(app.screen, ChangePasswordDialog), "dialog")
        await settled(pilot)

    assert snap_compare(app, terminal_size=(80, 24), run_before=ready)


def test_snapshot_fit_requests(
    snap_compare: Any, server: LiveServer, users: dict[str, str], tmp_path: Path
) -> None:
    app = snapshot_app(server, users, tmp_path)

    async def ready(pilot: Pilot[Any]) -> None:
        screen = await main_screen(pilot, app)
        friends = screen.query_one(FriendList)
        friends.highlighted = friends.get_option_index(REQUESTS)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, RequestsDialog), "the requests")
        await settled(pilot)

    assert snap_compare(app, terminal_size=(80, 24), run_before=ready)


def test_snapshot_fit_help(
    snap_compare: Any, server: LiveServer, users: dict[str, str], tmp_path: Path
) -> None:
    app = snapshot_app(server, users, tmp_path)

    async def ready(pilot: Pilot[Any]) -> None:
        await main_screen(pilot, app)
        await pilot.press("f1")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), "help")
        await settled(pilot)

    assert snap_compare(app, terminal_size=(80, 24), run_before=ready)
