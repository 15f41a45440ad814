"""The account screen (F10): privacy settings, SSH keys (list, remove, add one with a code)
and script tokens (list, revoke).

Read receipts and the typing indicator are per-user settings on the server
(``POST /settings``): turned off, the other side sees neither for you, and you
see neither for them.


A signed-in user adds another SSH key by making a code here and typing it on the
new machine's first ``ssh`` screen ("Link this key"). Keys are listed by
fingerprint; Delete removes the highlighted one. On a server without the SSH
door the key routes do not exist, and the screen says so.

Script tokens are made for bots and scripts with ``POST /tokens`` (docs/api.md,
"Tokens for scripts"); here they are listed by name and scopes, and Delete on the
highlighted one revokes it (after a question: a script using it stops at once).
"""

from __future__ import annotations

import arrow
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Footer, Input, Label, OptionList, Static, Switch
from textual.widgets.option_list import Option

from tui.client.errors import describe
from tui.client.http import ApiError, ServerUnreachable
from tui.client.models import ScriptToken, SshKey
from tui.core.sync import SyncCore
from tui.screens.dialogs import ROW_WIDTH, ConfirmDialog
from tui.text import fit, one_line

SETTINGS = (
    ("read_receipts", "Read receipts: others see when you have read their messages"),
    ("typing", "Typing indicator: others see when you are typing to them"),
)
"""The privacy switches: the setting's name on the server, what it does."""


class AccountScreen(ModalScreen[None]):
    BINDINGS = [
        Binding("escape", "close", "Close", id="account.close"),
        Binding("delete", "remove_key", "Remove key", id="account.remove_key"),
    ]

    def __init__(self, core: SyncCore) -> None:
        super().__init__()
        self.core = core
        self.keys: tuple[SshKey, ...] = ()
        self.tokens: tuple[ScriptToken, ...] = ()

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(f"Account: {one_line(self.core.me)}", classes="dialog-title")
            for name, text in SETTINGS:
                with Horizontal(classes="setting-row"):
                    yield Switch(id=name, disabled=True)
                    yield Label("\u2026", id=f"{name}-state", classes="setting-state")
                    yield Static(text, classes="setting-text")
            yield Static("SSH keys that sign in as you:", classes="dialog-hint")
            yield OptionList(id="keys-list")
            # shown only when there are script tokens: the dialog fits 60x20 without them
            hint = Static("Script tokens (Delete revokes):", id="tokens-hint")
            hint.add_class("dialog-hint")
            hint.display = False
            yield hint
            tokens = OptionList(id="tokens-list")
            tokens.display = False
            yield tokens
            with Horizontal(classes="dialog-buttons", id="account-buttons"):
                yield Button("Add a key", id="add-key", variant="primary")
                yield Button("Change password", id="change-password")
                yield Button("Sign out everywhere", id="logout-all", variant="warning")
            yield Static("", id="link-code", markup=False)
            yield Static("", classes="dialog-error", markup=False)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self._load()
        self._load_tokens()
        self._settings()

    @work(group="settings", exit_on_error=False)
    async def _settings(self, **change: bool) -> None:
        try:
            settings = await self.core.change_settings(**change)
        except (ApiError, ServerUnreachable) as exc:
            self.show_error(describe(exc))
            return
        for name, _ in SETTINGS:
            switch = self.query_one(f"#{name}", Switch)
            if name in settings:
                with switch.prevent(Switch.Changed):
                    switch.value = bool(settings[name])
                switch.disabled = False
                self._show_state(name, switch.value)

    def _show_state(self, name: str, value: bool) -> None:
        """The switch's state in words beside it: its colour alone says nothing to some."""
        self.query_one(f"#{name}-state", Label).update("on" if value else "off")

    @on(Switch.Changed)
    def _switched(self, event: Switch.Changed) -> None:
        if event.switch.id:
            self._show_state(event.switch.id, event.value)
            self._settings(**{event.switch.id: event.value})

    def show_error(self, text: str) -> None:
        self.query_one(".dialog-error", Static).update(text)

    @work(exclusive=True, group="account", exit_on_error=False)
    async def _load(self) -> None:
        try:
            self.keys = await self.core.client.keys()
        except (ApiError, ServerUnreachable) as exc:
            if isinstance(exc, ApiError) and exc.status == 404:
                self.show_error("This server has no SSH door: there are no keys to manage.")
            else:
                self.show_error(describe(exc))
            return
        options = self.query_one("#keys-list", OptionList)
        options.set_options(
            Option(
                Text(fit(one_line(f"{k.fingerprint}  {k.comment}".strip()), ROW_WIDTH)),
                id=k.fingerprint,
            )
            for k in self.keys
        )
        if not self.keys:
            self.show_error("No SSH keys yet: you sign in with a password.")

    @work(exclusive=True, group="tokens", exit_on_error=False)
    async def _load_tokens(self) -> None:
        try:
            self.tokens = await self.core.client.script_tokens()
        except (ApiError, ServerUnreachable) as exc:
            self.show_error(f"Script tokens: {describe(exc)}")
            return
        options = self.query_one("#tokens-list", OptionList)
        options.set_options(
            Option(Text(fit(one_line(_token_row(t)), ROW_WIDTH)), id=t.id) for t in self.tokens
        )
        options.display = bool(self.tokens)
        self.query_one("#tokens-hint", Static).display = bool(self.tokens)

    @on(Button.Pressed, "#add-key")
    def _add_key(self) -> None:
        self._make_code()

    @work(exclusive=True, group="account", exit_on_error=False)
    async def _make_code(self) -> None:
        try:
            made = await self.core.client.link_code()
        except (ApiError, ServerUnreachable) as exc:
            self.show_error(describe(exc))
            return
        minutes = max(1, made.expires_in // 60)
        self.query_one("#link-code", Static).update(
            f"Code: {made.code}  (valid {minutes} min, once). On the new machine run "
            "ssh to this server and choose “Link this key”."
        )

    def action_remove_key(self) -> None:
        """Delete: revoke the highlighted script token when that list has the focus,
        else remove the highlighted SSH key."""
        tokens = self.query_one("#tokens-list", OptionList)
        if tokens.has_focus:
            option = tokens.highlighted_option
            if option is not None and option.id:
                self._ask_revoke(option.id)
            return
        option = self.query_one("#keys-list", OptionList).highlighted_option
        if option is not None and option.id:
            self._remove(option.id)

    def _ask_revoke(self, token_id: str) -> None:
        found = next((t for t in self.tokens if t.id == token_id), None)
        name = one_line(found.name) if found is not None else token_id

        def confirmed(ok: bool | None) -> None:
            if ok:
                self._revoke(token_id, name)

        question = f"Revoke the script token “{name}”? A script using it stops at once."
        self.app.push_screen(ConfirmDialog(question, yes="Revoke"), confirmed)

    @work(exclusive=True, group="tokens", exit_on_error=False)
    async def _revoke(self, token_id: str, name: str) -> None:
        try:
            await self.core.client.revoke_token(token_id)
        except (ApiError, ServerUnreachable) as exc:
            self.show_error(describe(exc))
            return
        self.show_error(f"Revoked the script token “{name}”.")
        self._load_tokens()

    @work(exclusive=True, group="account", exit_on_error=False)
    async def _remove(self, fingerprint: str) -> None:
        try:
            await self.core.client.remove_key(fingerprint)
        except (ApiError, ServerUnreachable) as exc:
            self.show_error(describe(exc))
            return
        self.show_error(f"Removed {fingerprint}.")
        self._load()

    @on(Button.Pressed, "#change-password")
    def _change_password(self) -> None:
        self.app.push_screen(ChangePasswordDialog(self.core))

    @on(Button.Pressed, "#logout-all")
    def _logout_all(self) -> None:
        def confirmed(ok: bool | None) -> None:
            if ok:
                self._sign_out_everywhere()

        question = (
            "Sign out everywhere? Every device and script signed in as you must sign in again."
        )
        self.app.push_screen(ConfirmDialog(question, yes="Sign out everywhere"), confirmed)

    @work(exclusive=True, group="account", exit_on_error=False)
    async def _sign_out_everywhere(self) -> None:
        try:
            revoked = await self.core.client.logout_all()
        except (ApiError, ServerUnreachable) as exc:
            self.show_error(describe(exc))
            return
        self.dismiss(None)
        self.core.end_session(f"Signed out everywhere ({revoked} sessions ended).")

    def action_close(self) -> None:
        self.dismiss(None)


def _token_row(token: ScriptToken) -> str:
    """A token's row: its name, scopes and expiry (never its secret)."""
    scopes = "+".join(token.scopes)
    if token.expires_at is None:
        return f"{token.name}  [{scopes}]"
    when = arrow.get(token.expires_at).to("local").format("YYYY-MM-DD HH:mm")
    return f"{token.name}  [{scopes}]  until {when}"


class ChangePasswordDialog(ModalScreen[None]):
    """Change the password; every other session is signed out by the server."""

    BINDINGS = [Binding("escape", "close", "Cancel", id="password.cancel")]

    def __init__(self, core: SyncCore) -> None:
        super().__init__()
        self.core = core

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static("Change your password", classes="dialog-title")
            yield Input(password=True, placeholder="current password", id="current")
            yield Input(password=True, placeholder="new password (8 or more)", id="new")
            yield Input(password=True, placeholder="the new one again", id="again")
            yield Static(
                "Other devices and scripts signed in as you are signed out.",
                classes="dialog-hint",
            )
            yield Static("", classes="dialog-error", markup=False)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one("#current", Input).focus()

    def show_error(self, text: str) -> None:
        self.query_one(".dialog-error", Static).update(text)

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        current, new, again = (
            self.query_one(f"#{name}", Input).value for name in ("current", "new", "again")
        )
        if event.input.id != "again":
            self.focus_next()
            return
        if new != again:
            self.show_error("The two new passwords differ.")
            return
        self.show_error("Changing…")
        self._change(current, new)

    @work(exclusive=True, group="password", exit_on_error=False)
    async def _change(self, current: str, new: str) -> None:
        try:
            revoked = await self.core.client.change_password(current, new)
        except (ApiError, ServerUnreachable) as exc:
            self.show_error(describe(exc))
            return
        self.app.notify(
            f"Password changed; {revoked} other session(s) signed out.", markup=False, timeout=4
        )
        self.dismiss(None)

    def action_close(self) -> None:
        self.dismiss(None)
