"""The Textual application: composes screens; owns config, HTTP client and clock.

Build it with :func:`make_app` (the CLI, the demo and the tests all do): the app
gets its configuration and HTTP client from outside and never reads globals. It
starts on the main screen when a token is saved for the server (a restart stays
signed in, even offline), and otherwise on the sign-in screen (which signs in by
itself when ``PAIRCHAT_PASSWORD`` is set). Each signed-in session gets its own
:class:`~tui.core.sync.SyncCore`, run by the main screen.

With ``signals=True`` (the real program), SIGTERM and SIGHUP (or a hang-up of the
terminal that no SIGHUP announced, ``tui/hangup.py``) end the app the normal way,
so the terminal is restored (no alternate screen or mouse reporting left behind)
and drafts are saved. After SIGHUP the terminal is gone: the output
goes to ``/dev/null`` first (a write to a hung-up terminal fails, which ended
Textual's writer thread and left the exit blocked on its full queue for good), and
a watchdog ends the process if the exit still has not finished in a few seconds.
"""

from __future__ import annotations

import asyncio
import os
import select
import signal
import threading
from collections.abc import Iterable
from pathlib import Path

from textual import events, work
from textual.app import App
from textual.binding import Binding

from tui import hangup, keys
from tui.client.http import PairchatClient
from tui.client.models import Session
from tui.config import Config
from tui.core.drafts import Drafts
from tui.core.outbox import Outbox
from tui.core.prefs import Prefs
from tui.core.sync import SyncCore
from tui.formatting import Clock, system_clock
from tui.input_order import OrderedInput, terminal_input_fd
from tui.screens.claim import ClaimScreen
from tui.screens.help import HelpScreen, binding_rows
from tui.screens.main import MainScreen
from tui.screens.signin import SignInScreen
from tui.widgets.chat_log import ChatLog
from tui.widgets.chat_pane import ChatPane, SearchBar
from tui.widgets.composer import Composer
from tui.widgets.friend_list import FriendList


class PairchatApp(App[None]):
    CSS_PATH = Path(__file__).with_name("pairchat.tcss")
    TITLE = "pairchat"
    ENABLE_COMMAND_PALETTE = False
    BINDINGS = [
        Binding("ctrl+q", "quit", "Quit", priority=True, id="app.quit"),
        Binding("f1", "help", "Help", id="app.help"),
    ]

    def __init__(
        self,
        config: Config,
        client: PairchatClient,
        clock: Clock = system_clock,
        *,
        signals: bool = False,
        token: tuple[str, str] | None = None,
        ticket: str | None = None,
    ) -> None:
        super().__init__()
        self.ticket = ticket
        """An SSH door's one-time ticket for an unknown key: start on the claim screen."""
        self.given_session = token
        """(username, token) handed in by a door; otherwise the saved one is used."""
        self.config = config
        self.client = client
        self.clock = clock
        self.signals = signals
        self.animation_level = "none"
        self.input = OrderedInput(self, self._route_input)
        """Every key and paste, routed in arrival order (see :mod:`tui.input_order`)."""
        self._session_over = False
        """The signed-in session has ended (a second word of it changes nothing)."""

    async def on_event(self, event: events.Event) -> None:
        if (
            isinstance(event, (events.Key, events.Paste))
            and not event.is_forwarded
            and self.input.running
        ):
            self.input.accept(event)
            return
        await super().on_event(event)

    async def _route_input(self, event: events.Key | events.Paste) -> None:
        await super().on_event(event)  # Textual's routing, against the focus of now

    async def _press_keys(self, keys: Iterable[str]) -> None:
        """Keys pressed by a test's Pilot: handled, and the app settled, before
        ``press()`` returns — a condition, where Textual only guesses from CPU time
        (which a loaded machine fools)."""
        await super()._press_keys(keys)
        await self.input.drained()

    def on_mount(self) -> None:
        self.input.start()
        if self.config.keymap:
            self.set_keymap(self.config.keymap)
        if self.signals:
            loop = asyncio.get_running_loop()
            for number in (signal.SIGTERM, signal.SIGHUP):
                loop.add_signal_handler(number, self.stop_for_signal, number)
            hangup.watch(terminal_input_fd())  # a hang-up no SIGHUP announced
        saved = self.given_session or self.config.saved_session()
        if saved is not None and not self.config.password:
            username, token = saved
            self.client.token = token
            self.client.username = username
            self.push_screen(self._main(Session(username, "")))
        elif self.ticket:
            self.push_screen(ClaimScreen(self.ticket))
        else:
            self.push_screen(SignInScreen())

    def stop_for_signal(self, signum: int) -> None:
        """End the app for SIGTERM/SIGHUP (called on the app's loop, never mid-bytecode):
        the keys already received are handled first, so the drafts saved hold them."""
        hung_up = signum == signal.SIGHUP and _terminal_hung_up()
        if hung_up:
            _silence_terminal()
        _exit_soon_anyway(128 + signum)
        self._stop_after_input(None if hung_up else terminal_input_fd())

    @work(group="stop", exit_on_error=False)
    async def _stop_after_input(self, terminal_fd: int | None) -> None:
        await self.input.drained(terminal_fd)
        self.exit()

    def _main(self, session: Session) -> MainScreen:
        self._session_over = False
        name = session.username.lower()
        core = SyncCore(
            self.client,
            session,
            outbox=Outbox(self.config.outbox_path(name)),
            drafts=Drafts(self.config.drafts_path(name)),
            prefs=Prefs(self.config.prefs_path(name)),
            poll_wait=self.config.poll_wait,
            first_event_timeout=self.config.first_event_timeout,
        )
        return MainScreen(core)

    def on_sign_in_screen_signed_in(self, message: SignInScreen.SignedIn) -> None:
        session = message.session
        if session.token:
            self.config.save_session(session.username, session.token)
        self.switch_screen(self._main(session))

    def session_ended(self, notice: str) -> None:
        """The server refused our token, or we signed out: forget it, ask to sign in again.

        Once per session: a sign-out here revokes the token, so the core may still meet
        a 401 (its event stream ends at once) before the main screen is gone."""
        if self._session_over:
            return
        self._session_over = True
        self.config.forget_session()
        self.client.token = None
        self.config.password = None
        self.switch_screen(SignInScreen(notice))

    @work(exclusive=True, group="sign-out", exit_on_error=False)
    async def sign_out(self, core: SyncCore) -> None:
        revoked = await core.sign_out()
        notice = (
            "Signed out."
            if revoked
            else (
                "Signed out on this computer; the server could not be reached to revoke the token."
            )
        )
        self.session_ended(notice)

    def action_help(self) -> None:
        if isinstance(self.screen, HelpScreen):
            return
        keymap = self.config.keymap
        mains = [screen for screen in self.screen_stack if isinstance(screen, MainScreen)]
        connection = [("Connection", [("live updates", mains[-1].core.live_updates)])]
        sections = [
            *(connection if mains else []),
            ("Everywhere", binding_rows(self.BINDINGS, keymap)),
            ("Main screen", binding_rows(MainScreen.BINDINGS, keymap)),
            ("Friend list", binding_rows(FriendList.BINDINGS, keymap)),
            ("Message box", binding_rows(Composer.BINDINGS, keymap)),
            ("Messages", binding_rows([*ChatPane.BINDINGS, *ChatLog.BINDINGS], keymap)),
            ("Search", binding_rows(SearchBar.BINDINGS, keymap)),
        ]
        self.push_screen(HelpScreen(sections))

    async def on_unmount(self) -> None:
        self.input.stop()
        await self.client.aclose()


EXIT_GRACE = 5.0
"""Seconds a signalled app has to exit the normal way before the watchdog ends it."""


def _terminal_hung_up(fd: int = 2) -> bool:
    """The terminal behind ``fd`` is gone (a plain ``kill -HUP`` leaves it in place)."""
    poller = select.poll()
    poller.register(fd, select.POLLOUT)
    return any(events & (select.POLLHUP | select.POLLERR) for _, events in poller.poll(0))


def _silence_terminal() -> None:
    """Point stdout and stderr (Textual writes to stderr) at /dev/null: nothing to restore."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    for fd in (1, 2):
        try:
            os.dup2(devnull, fd)
        except OSError:
            continue
    os.close(devnull)


def _exit_soon_anyway(code: int) -> None:
    """A daemon watchdog: if the process is still here after ``EXIT_GRACE``, end it.

    Drafts and the outbox are written when they change, so nothing typed is lost."""
    timer = threading.Timer(EXIT_GRACE, os._exit, args=(code,))
    timer.daemon = True
    timer.start()


def make_app(
    config: Config,
    client: PairchatClient | None = None,
    clock: Clock = system_clock,
    *,
    signals: bool = False,
    token: tuple[str, str] | None = None,
    ticket: str | None = None,
) -> PairchatApp:
    """The app for ``config`` (a client for ``config.server`` unless one is given)."""
    keys.install()
    client = client or PairchatClient(config.server)
    return PairchatApp(config, client, clock, signals=signals, token=token, ticket=ticket)
