"""Sign in / register screen: username, password, optional display name, inline errors.

Enter signs in; Ctrl+R (or the button) registers. The request runs in a worker
and its outcome comes back as :class:`SignInScreen.SignedIn` (handled by the app)
or as an inline error: wrong password, name taken, or server unreachable with
the URL that was tried. With ``PAIRCHAT_PASSWORD`` set, sign-in starts at once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Button, Footer, Input, Label, Static

from tui.client.errors import describe
from tui.client.http import ApiError, ServerUnreachable
from tui.client.models import Session
from tui.text import one_line

if TYPE_CHECKING:
    from tui.app import PairchatApp


class SignInScreen(Screen[None]):
    BINDINGS = [
        Binding("ctrl+r", "register", "Register", id="signin.register"),
    ]

    class SignedIn(Message):
        def __init__(self, session: Session) -> None:
            super().__init__()
            self.session = session

    def __init__(self, notice: str = "") -> None:
        super().__init__()
        self.notice = notice

    @property
    def papp(self) -> PairchatApp:
        return cast("PairchatApp", self.app)

    def compose(self) -> ComposeResult:
        config = self.papp.config
        with Vertical(id="signin-form"):
            yield Static(f"pairchat · {one_line(config.server)}", id="signin-title", markup=False)
            with Horizontal(classes="signin-row"):
                yield Label("Username", classes="signin-label")
                yield Input(value=config.user or "", placeholder="e.g. alice", id="username")
            with Horizontal(classes="signin-row"):
                yield Label("Password", classes="signin-label")
                yield Input(password=True, placeholder="8 characters or more", id="password")
            with Horizontal(classes="signin-row"):
                yield Label("Display name", classes="signin-label")
                yield Input(placeholder="optional, to register", id="display-name")
            with Horizontal(id="signin-buttons"):
                yield Button("Sign in", id="signin", variant="primary")
                yield Button("Register", id="register")
            yield Static(self.notice, id="signin-error", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        config = self.papp.config
        username = self.query_one("#username", Input)
        if config.user:
            self.query_one("#password", Input).focus()
        else:
            username.focus()
        if config.password and config.user and not self.notice:
            self.show_error("Signing in…")
            self._submit("login", config.user, config.password, "")

    def show_error(self, text: str) -> None:
        self.query_one("#signin-error", Static).update(text)

    def _fields(self) -> tuple[str, str, str]:
        return (
            self.query_one("#username", Input).value.strip(),
            self.query_one("#password", Input).value,
            self.query_one("#display-name", Input).value.strip(),
        )

    def _start(self, mode: str) -> None:
        username, password, display_name = self._fields()
        if not username or not password:
            self.show_error("Enter a username and a password.")
            self.query_one("#username" if not username else "#password", Input).focus()
            return
        self.show_error("Registering…" if mode == "register" else "Signing in…")
        self._submit(mode, username, password, display_name)

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "username" and not self._fields()[1]:
            self.query_one("#password", Input).focus()
            return
        self._start("login")

    @on(Button.Pressed, "#signin")
    def action_sign_in(self) -> None:
        self._start("login")

    @on(Button.Pressed, "#register")
    def action_register(self) -> None:
        self._start("register")

    @work(exclusive=True, group="signin", exit_on_error=False)
    async def _submit(self, mode: str, username: str, password: str, display_name: str) -> None:
        client = self.papp.client
        try:
            if mode == "register":
                session = await client.register(username, password, display_name or None)
            else:
                session = await client.login(username, password)
        except (ApiError, ServerUnreachable) as exc:
            self.show_error(describe(exc))
            return
        self.post_message(self.SignedIn(session))
