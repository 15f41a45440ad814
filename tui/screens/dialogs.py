"""Modal dialogs of the main screen: add a friend, confirm a block, unblock someone.

Each dialog does its own request in a worker, shows errors inline, and
dismisses with the username it acted on (or ``None`` when cancelled with Escape).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, cast

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, OptionList, Static
from textual.widgets.option_list import Option

from tui.api import ApiError, ServerUnreachable
from tui.formatting import plain, safe
from tui.screens.signin import describe_error

if TYPE_CHECKING:
    from tui.app import PairchatApp


class _Dialog(ModalScreen[str | None]):
    BINDINGS = [Binding("escape", "cancel", "Cancel", id="dialog.cancel")]

    @property
    def papp(self) -> PairchatApp:
        return cast("PairchatApp", self.app)

    def action_cancel(self) -> None:
        self.dismiss(None)

    def show_error(self, text: str) -> None:
        self.query_one(".dialog-error", Static).update(text)

    @work(exclusive=True, group="dialog", exit_on_error=False)
    async def _act(self, username: str, request: Callable[[str], Awaitable[bool]]) -> None:
        try:
            await request(username)
        except (ApiError, ServerUnreachable) as exc:
            self.show_error(describe_error(exc, self.papp.client.base_url))
            return
        self.dismiss(username)


class AddFriendDialog(_Dialog):
    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static("Add a friend", classes="dialog-title")
            yield Input(placeholder="their username", id="friend-name")
            yield Static("Enter to add · Escape to cancel", classes="dialog-hint")
            yield Static("", classes="dialog-error", markup=False)

    @on(Input.Submitted, "#friend-name")
    def _submit(self, event: Input.Submitted) -> None:
        name = event.value.strip()
        if not name:
            self.show_error("Type a username.")
            return
        self.show_error("Adding…")
        self._act(name, self.papp.client.add_friend)


class BlockDialog(_Dialog):
    def __init__(self, username: str, label: str) -> None:
        super().__init__()
        self.username = username
        self.label = label

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(plain(f"Block {self.label} (@{self.username})?"), classes="dialog-title")
            yield Static(
                "Their messages to you will be refused and they leave your list. "
                "F6 lists blocked people to unblock them.",
                classes="dialog-hint",
            )
            with Horizontal(classes="dialog-buttons"):
                yield Button("Block", id="block", variant="error")
                yield Button("Cancel", id="cancel")
            yield Static("", classes="dialog-error", markup=False)

    def on_mount(self) -> None:
        self.query_one("#cancel", Button).focus()

    @on(Button.Pressed, "#block")
    def _block(self) -> None:
        self.show_error("Blocking…")
        self._act(self.username, self.papp.client.block_friend)

    @on(Button.Pressed, "#cancel")
    def _cancel(self) -> None:
        self.dismiss(None)


class UnblockDialog(_Dialog):
    def __init__(self, blocked: list[str]) -> None:
        super().__init__()
        self.blocked = blocked

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static("Blocked people", classes="dialog-title")
            if self.blocked:
                yield OptionList(
                    *[Option(plain(name), id=name) for name in self.blocked], id="blocked-list"
                )
                yield Static("Enter to unblock · Escape to close", classes="dialog-hint")
            else:
                yield Static("You have not blocked anyone.", classes="dialog-hint")
            yield Static("", classes="dialog-error", markup=False)

    @on(OptionList.OptionSelected, "#blocked-list")
    def _unblock(self, event: OptionList.OptionSelected) -> None:
        name = event.option.id
        if name:
            self.show_error(f"Unblocking {safe(name)}…")
            self._act(name, self.papp.client.unblock_friend)
