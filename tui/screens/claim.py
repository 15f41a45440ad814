"""The SSH door's first screen for an unknown key: claim a username, or link the key.

The door starts the TUI with a one-time ticket bound to the SSH key it saw
(``PAIRCHAT_DOOR_TICKET``). Claiming creates an account whose identity is that
key (no password); linking adds the key to an existing account, with a code made
on a signed-in pairchat (Account, F10 → "Add a key"). Either way the screen ends
with :class:`~tui.screens.signin.SignInScreen.SignedIn`, as a password sign-in does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Button, Footer, Input, Label, Static

from tui.client.errors import describe
from tui.client.http import ApiError, ServerUnreachable
from tui.client.models import Session
from tui.screens.signin import SignInScreen

if TYPE_CHECKING:
    from tui.app import PairchatApp


class ClaimScreen(Screen[None]):
    BINDINGS = [Binding("ctrl+l", "link", "Link with a code", id="claim.link")]

    def __init__(self, ticket: str) -> None:
        super().__init__()
        self.ticket = ticket

    @property
    def papp(self) -> PairchatApp:
        return cast("PairchatApp", self.app)

    def compose(self) -> ComposeResult:
        with Vertical(id="signin-form"):
            yield Static("Welcome to pairchat", id="claim-title")
            yield Static("", id="signin-error", markup=False)
            yield Static("This SSH key is new here. Claim a username for it:")
            with Horizontal(classes="signin-row"):
                yield Label("Username", classes="signin-label")
                yield Input(placeholder="letters, digits, hyphens", id="claim-username")
            with Horizontal(classes="signin-row"):
                yield Label("Display name", classes="signin-label")
                yield Input(placeholder="optional", id="claim-display-name")
            with Horizontal(id="signin-buttons"):
                yield Button("Claim", id="claim", variant="primary")
            yield Static(
                'Have an account? On a signed-in pairchat press F10, "Add a key", '
                "and type the code here:"
            )
            with Horizontal(classes="signin-row"):
                yield Label("Code", classes="signin-label")
                yield Input(placeholder="e.g. 7K2Q-9XWD", id="claim-code")
                yield Button("Link this key", id="link")  # beside the code: 19 rows in all
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one("#claim-username", Input).focus()

    def show_error(self, text: str) -> None:
        self.query_one("#signin-error", Static).update(text)

    @on(Input.Submitted, "#claim-username")
    @on(Input.Submitted, "#claim-display-name")
    @on(Button.Pressed, "#claim")
    def action_claim(self) -> None:
        username = self.query_one("#claim-username", Input).value.strip()
        display_name = self.query_one("#claim-display-name", Input).value.strip()
        if not username:
            self.show_error("Choose a username.")
            self.query_one("#claim-username", Input).focus()
            return
        self.show_error("Claiming…")
        self._request("claim", username, display_name)

    @on(Input.Submitted, "#claim-code")
    @on(Button.Pressed, "#link")
    def action_link(self) -> None:
        code = self.query_one("#claim-code", Input).value.strip()
        if not code:
            self.show_error("Type the code made on your signed-in pairchat (F10, Add a key).")
            self.query_one("#claim-code", Input).focus()
            return
        self.show_error("Linking…")
        self._request("link", code, "")

    @work(exclusive=True, group="claim", exit_on_error=False)
    async def _request(self, mode: str, first: str, second: str) -> None:
        client = self.papp.client
        session: Session
        try:
            if mode == "claim":
                session = await client.door_claim(self.ticket, first, second)
            else:
                session = await client.door_link(self.ticket, first)
        except (ApiError, ServerUnreachable) as exc:
            if isinstance(exc, ApiError) and exc.code == "username_taken":
                self.show_error("That username is taken. Choose another.")
            else:
                self.show_error(describe(exc))
            return
        self.post_message(SignInScreen.SignedIn(session))
