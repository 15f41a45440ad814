"""The Textual application: composes screens, owns config, client, clock and outbox.

Build it with :func:`make_app` (the CLI, the demo and the tests all do): the app
gets its configuration and HTTP client from outside and never reads globals. It
starts on the main screen when a token is saved for the server (a restart stays
signed in, even offline), and otherwise on the sign-in screen (which signs in by
itself when ``PAIRCHAT_PASSWORD`` is set).
"""

from __future__ import annotations

from pathlib import Path

from textual.app import App
from textual.binding import Binding

from tui.api import AsyncPairchatClient, Session
from tui.config import Config
from tui.formatting import Clock, system_clock
from tui.outbox import Outbox
from tui.screens.main import MainScreen
from tui.screens.signin import SignInScreen


class PairchatApp(App[None]):
    CSS_PATH = Path(__file__).with_name("pairchat.tcss")
    TITLE = "pairchat"
    ENABLE_COMMAND_PALETTE = False
    BINDINGS = [
        Binding("ctrl+q", "quit", "Quit", priority=True, id="app.quit"),
    ]

    def __init__(
        self, config: Config, client: AsyncPairchatClient, clock: Clock = system_clock
    ) -> None:
        super().__init__()
        self.config = config
        self.client = client
        self.clock = clock
        self.animation_level = "none"
        self.outbox: Outbox | None = None

    def on_mount(self) -> None:
        if self.config.keymap:
            self.set_keymap(self.config.keymap)
        saved = self.config.saved_session()
        if saved is not None and not self.config.password:
            username, token = saved
            self.client.token = token
            self.client.username = username
            self.push_screen(self._main(Session(username, "")))
        else:
            self.push_screen(SignInScreen())

    def _main(self, session: Session) -> MainScreen:
        self.outbox = Outbox(self.config.outbox_path(session.username))
        return MainScreen(session, self.outbox)

    def on_sign_in_screen_signed_in(self, message: SignInScreen.SignedIn) -> None:
        session = message.session
        if session.token:
            self.config.save_session(session.username, session.token)
        self.switch_screen(self._main(session))

    def session_expired(self) -> None:
        """The server refused our token: forget it and ask to sign in again."""
        self.config.forget_session()
        self.client.token = None
        self.config.password = None
        self.switch_screen(SignInScreen("Your session has ended. Please sign in again."))

    async def on_unmount(self) -> None:
        await self.client.aclose()


def make_app(
    config: Config, client: AsyncPairchatClient | None = None, clock: Clock = system_clock
) -> PairchatApp:
    """The app for ``config`` (a client for ``config.server`` unless one is given)."""
    return PairchatApp(config, client or AsyncPairchatClient(config.server), clock=clock)
