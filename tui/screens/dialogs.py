"""Modal dialogs of the main screen: add a friend, block, unblock, unsent messages, sign out,
the chat's links.

Each dialog asks the sync core to act (in a worker), shows errors inline, and
dismisses with what it acted on (or ``None`` when cancelled with Escape). Each
has its own footer, so the keys shown are the dialog's.

A list dialog (F7's unsent messages, the message requests) stays open when an
action leaves no row in it, saying so ("Nothing left here."), until Escape: keys
typed next land in the dialog the user still sees, where nothing is left for them to
do - never in the message box under it, where a second Enter meant for F7 would send
a half-written draft (a reviewer's finding against closing it). Accepting a request
opens that chat: accepting is choosing to talk to them. The requests' answers go to
the server in a worker of the app's, the row gone at once: the dialog never waits on
the network before the next key (tui/input_order.py routes each key against the
focus the one before left).
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Footer, Input, OptionList, Static
from textual.widgets.option_list import Option

from tui.client.errors import describe
from tui.client.http import ApiError, ServerUnreachable
from tui.core.sync import SyncCore
from tui.text import fit, one_line

ROW_WIDTH = 52
"""A row of a dialog's list: the dialog's 56 columns inside, less the list's border and
padding; longer rows end with an ellipsis instead of wrapping."""


class _Dialog(ModalScreen[str | None]):
    BINDINGS = [Binding("escape", "cancel", "Cancel", id="dialog.cancel")]

    def __init__(self, core: SyncCore) -> None:
        super().__init__()
        self.core = core

    def action_cancel(self) -> None:
        self.dismiss(None)

    def show_error(self, text: str) -> None:
        self.query_one(".dialog-error", Static).update(text)

    @work(exclusive=True, group="dialog", exit_on_error=False)
    async def _act(self, username: str, request: Callable[[str], Awaitable[None]]) -> None:
        try:
            await request(username)
        except (ApiError, ServerUnreachable) as exc:
            self.show_error(describe(exc))
            return
        self.dismiss(username)


class _ListDialog(_Dialog):
    """A dialog around one list of rows (id, text), refilled after each action on a row."""

    TITLE_TEXT = ""
    HINT = ""
    EMPTY = ""  # shown when there are no rows

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(self.TITLE_TEXT, classes="dialog-title")
            yield OptionList(id="dialog-list")
            yield Static(self.HINT, classes="dialog-hint")
            yield Static("", classes="dialog-error", markup=False)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self._fill()

    def rows(self) -> list[tuple[str, str]]:
        """(option id, text) of each row, in order; the text is user data, never markup."""
        raise NotImplementedError

    def _fill(self) -> None:
        options = self.query_one("#dialog-list", OptionList)
        rows = self.rows()
        options.set_options(
            Option(Text(fit(one_line(text), ROW_WIDTH)), id=row_id) for row_id, text in rows
        )
        if rows:
            options.highlighted = 0
            options.focus()
        else:
            self.show_error(self.EMPTY)

    def _selected(self) -> str | None:
        option = self.query_one("#dialog-list", OptionList).highlighted_option
        return option.id if option is not None else None


class AddFriendDialog(_Dialog):
    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static("Add a friend", classes="dialog-title")
            yield Input(placeholder="their username", id="friend-name")
            yield Static("", classes="dialog-error", markup=False)
        yield Footer(compact=True)

    @on(Input.Submitted, "#friend-name")
    def _submit(self, event: Input.Submitted) -> None:
        name = event.value.strip().removeprefix("@")  # names are written @alice here
        if not name:
            self.show_error("Type a username.")
            return
        self.show_error("Adding\u2026")
        self._act(name, self.core.add_friend)


class BlockDialog(_Dialog):
    def __init__(self, core: SyncCore, username: str) -> None:
        super().__init__(core)
        self.username = username

    def compose(self) -> ComposeResult:
        label = one_line(self.core.label(self.username))
        with Vertical(classes="dialog"):
            yield Static(
                Text(fit(f"Block {label} (@{self.username})?", 56)), classes="dialog-title"
            )
            yield Static(
                "Their messages to you will be refused and they leave your list. "
                "F6 lists blocked people to unblock them.",
                classes="dialog-hint",
            )
            with Horizontal(classes="dialog-buttons"):
                yield Button("Block", id="block", variant="error")
                yield Button("Cancel", id="cancel")
            yield Static("", classes="dialog-error", markup=False)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one("#cancel", Button).focus()

    @on(Button.Pressed, "#block")
    def _block(self) -> None:
        self.show_error("Blocking\u2026")
        self._act(self.username, self.core.block)

    @on(Button.Pressed, "#cancel")
    def _cancel(self) -> None:
        self.dismiss(None)


class UnblockDialog(_Dialog):
    def compose(self) -> ComposeResult:
        blocked = sorted(self.core.blocked)
        with Vertical(classes="dialog"):
            yield Static("Blocked people", classes="dialog-title")
            if blocked:
                yield OptionList(
                    *[Option(Text(fit(one_line(name), ROW_WIDTH)), id=name) for name in blocked],
                    id="blocked-list",
                )
                yield Static("Enter unblocks the highlighted person.", classes="dialog-hint")
            else:
                yield Static("You have not blocked anyone.", classes="dialog-hint")
            yield Static("", classes="dialog-error", markup=False)
        yield Footer(compact=True)

    @on(OptionList.OptionSelected, "#blocked-list")
    def _unblock(self, event: OptionList.OptionSelected) -> None:
        name = event.option.id
        if name:
            self.show_error(f"Unblocking {one_line(name)}\u2026")
            self._act(name, self.core.unblock)


class UnsentDialog(_ListDialog):
    """Messages the server refused for good: retry (Enter) or discard (Delete) each."""

    BINDINGS = [
        Binding("enter", "retry", "Retry", id="unsent.retry"),
        Binding("delete,d", "discard", "Discard", id="unsent.discard"),
    ]
    TITLE_TEXT = "Messages not sent"
    HINT = "Enter: send again (after unblocking, say) \u00b7 Delete: discard it"
    EMPTY = "Nothing left here."

    def rows(self) -> list[tuple[str, str]]:
        failed = [item for item in self.core.outbox.items if item.failed]
        return [(i.client_id, f"to {i.to}: {i.summary} \u2014 {i.error}") for i in failed]

    @on(OptionList.OptionSelected, "#dialog-list")
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        self.action_retry()

    def action_retry(self) -> None:
        client_id = self._selected()
        if client_id:
            self.core.retry(client_id)
            self._fill()  # the rows left, or the dialog's word that none is

    def action_discard(self) -> None:
        client_id = self._selected()
        if client_id:
            self.core.discard(client_id)
            self._fill()  # the rows left, or the dialog's word that none is


class SignOutDialog(_Dialog):
    def compose(self) -> ComposeResult:
        waiting = self.core.outbox.pending_count
        note = (
            f" {waiting} message{'s' if waiting != 1 else ''} waiting to be sent stay in the "
            "outbox and go out when you sign in again."
            if waiting
            else ""
        )
        with Vertical(classes="dialog"):
            yield Static(f"Sign out of pairchat as {self.core.me}?", classes="dialog-title")
            yield Static(
                "The token is revoked on the server and deleted from this computer." + note,
                classes="dialog-hint",
            )
            with Horizontal(classes="dialog-buttons"):
                yield Button("Sign out", id="sign-out", variant="warning")
                yield Button("Cancel", id="cancel")
            yield Static("", classes="dialog-error", markup=False)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one("#cancel", Button).focus()

    @on(Button.Pressed, "#sign-out")
    def _sign_out(self) -> None:
        self.dismiss(self.core.me)

    @on(Button.Pressed, "#cancel")
    def _cancel(self) -> None:
        self.dismiss(None)


def is_remote() -> bool:
    """Running over SSH (or in a door): a browser opened here would open on the server."""
    return bool(
        os.environ.get("SSH_CONNECTION")
        or os.environ.get("SSH_TTY")
        or os.environ.get("PAIRCHAT_REMOTE")
    )


class LinksDialog(ModalScreen[None]):
    """The chat's links, newest first: Enter opens one (copies it when remote), c copies."""

    BINDINGS = [
        Binding("escape", "close", "Close", id="links.close"),
        Binding("c", "copy", "Copy", id="links.copy"),
    ]

    def __init__(self, links: list[str]) -> None:
        super().__init__()
        self.links = links

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static("Links in this chat", classes="dialog-title")
            if self.links:
                yield OptionList(
                    *[
                        Option(Text(fit(one_line(url), ROW_WIDTH)), id=str(i))
                        for i, url in enumerate(self.links)
                    ],
                    id="links-list",
                )
                verb = "copies" if is_remote() else "opens"
                yield Static(f"Enter {verb} the link \u00b7 c copies it", classes="dialog-hint")
            else:
                yield Static("No links in the loaded messages.", classes="dialog-hint")
        yield Footer(compact=True)

    def _url(self) -> str | None:
        options = self.query("#links-list")
        if not options:
            return None
        option = self.query_one("#links-list", OptionList).highlighted_option
        return self.links[int(option.id)] if option is not None and option.id else None

    @on(OptionList.OptionSelected, "#links-list")
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        url = self._url()
        if url is None:
            return
        if is_remote():
            self.action_copy()
            return
        self.app.open_url(url)
        self.dismiss(None)

    def action_copy(self) -> None:
        url = self._url()
        if url is not None:
            self.app.copy_to_clipboard(url)
            self.app.notify("Copied the link.", markup=False, timeout=2)
            self.dismiss(None)

    def action_close(self) -> None:
        self.dismiss(None)


class ConfirmDialog(ModalScreen[bool]):
    """A yes/no question; Cancel has the focus, so a stray Enter changes nothing."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="confirm.cancel")]

    def __init__(self, question: str, yes: str = "Delete") -> None:
        super().__init__()
        self.question = question
        self.yes = yes

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(self.question, classes="dialog-title", markup=False)
            with Horizontal(classes="dialog-buttons"):
                yield Button(self.yes, id="yes", variant="error")
                yield Button("Cancel", id="no")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    @on(Button.Pressed, "#yes")
    def _yes(self) -> None:
        self.dismiss(True)

    @on(Button.Pressed, "#no")
    def action_cancel(self) -> None:
        self.dismiss(False)


class RequestsDialog(_ListDialog):
    """Conversations started by people not in my list: read (Enter), accept, decline."""

    BINDINGS = [
        Binding("a", "accept", "Accept", tooltip="Add them as a friend", id="requests.accept"),
        Binding(
            "x",
            "decline",
            "Decline",
            tooltip="Hide it until they write again",
            id="requests.decline",
        ),
        Binding("b", "block", "Block", tooltip="Refuse their messages", id="requests.block"),
    ]
    TITLE_TEXT = "Message requests"
    HINT = (
        "They wrote to you but are not in your list: no toast or bell for them until "
        "you accept. Enter reads the conversation."
    )
    EMPTY = "No requests."

    def __init__(self, core: SyncCore) -> None:
        super().__init__(core)
        self._answered: set[str] = set()
        """Requests answered here whose answer the server has not confirmed yet: not
        shown (a refusal brings the row back)."""

    def rows(self) -> list[tuple[str, str]]:
        requests = sorted(self.core.requests.values(), key=lambda f: f.username)
        return [
            (
                f.username,
                f"{f.display_name or f.username} (@{f.username})"
                + (f" \u00b7 {f.unread} unread" if f.unread else ""),
            )
            for f in requests
            if f.username not in self._answered
        ]

    @on(OptionList.OptionSelected, "#dialog-list")
    def _read(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_accept(self) -> None:
        """Accept and open their chat at once: accepting is choosing to talk to them, and
        the keys typed next are meant for that chat (the server is told meanwhile)."""
        if name := self._selected():
            self._answer(name, "accept", self.core.accept)
            self.dismiss(name)

    def action_decline(self) -> None:
        if name := self._selected():
            self._answer(name, "decline", self.core.decline)
            self._fill()  # the rows left, or the dialog's word that none is

    def action_block(self) -> None:
        if name := self._selected():
            self._answer(name, "block", self.core.block)
            self._fill()  # the rows left, or the dialog's word that none is

    def _answer(self, username: str, verb: str, request: Callable[[str], Awaitable[None]]) -> None:
        """Tell the server in a worker of the app's (it outlives this dialog); the row goes
        now, so the dialog answers the next key as the user sees it. A refusal says why
        and puts the row back if the dialog is still open."""
        self._answered.add(username)
        app = self.app

        async def tell() -> None:
            try:
                await request(username)
            except (ApiError, ServerUnreachable) as exc:
                self._answered.discard(username)
                app.notify(
                    f"Could not {verb} {username}: {describe(exc)}",
                    severity="error",
                    markup=False,
                )
                if self.is_attached:
                    self._fill()
                return
            self._answered.discard(username)  # the core's list has it right now

        app.run_worker(tell(), group="requests", exit_on_error=False)


REACTIONS = ("\U0001f44d", "\u2764\ufe0f", "\U0001f602", "\U0001f62e", "\U0001f622", "\U0001f64f")
"""The picker's six: 👍 ❤️ 😂 😮 😢 🙏 (keys 1-6); any other emoji can be typed."""


class ReactionPicker(ModalScreen[str | None]):
    """Choose a reaction: 1-6 for the six, or type one and press Enter. Dismisses with the
    emoji chosen (the chat pane turns my current one into a removal), or None."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="react.cancel")]

    def __init__(self, mine: str | None = None) -> None:
        super().__init__()
        self.mine = mine

    def compose(self) -> ComposeResult:
        row = "   ".join(f"{n} {one_line(emoji)}" for n, emoji in enumerate(REACTIONS, start=1))
        hint = "1-6 or type one, Enter."
        if self.mine:
            hint += f" Yours: {one_line(self.mine)} (choose it again to remove it)."
        with Vertical(classes="dialog"):
            yield Static("React", classes="dialog-title")
            yield Static(row, id="react-row", markup=False)
            yield Input(placeholder="or type an emoji", id="react-input", max_length=16)
            yield Static(hint, classes="dialog-hint", markup=False)
        yield Footer(compact=True)

    @on(Input.Changed, "#react-input")
    def _digit(self, event: Input.Changed) -> None:
        """A digit 1-6 typed in the empty box picks that one of the six at once."""
        if len(event.value) == 1 and event.value in "123456":
            self.dismiss(REACTIONS[int(event.value) - 1])

    @on(Input.Submitted, "#react-input")
    def _typed(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        if text:
            self.dismiss(text)

    def action_cancel(self) -> None:
        self.dismiss(None)
