"""The main screen: status line, friend list (left), chat pane (right), footer.

Thin by design. The sync core (:mod:`tui.core.sync`) owns the state and the
network; this screen runs it in one worker, routes its events to the widgets
that draw them, and turns the screen-wide keys into the core's intents (open
the next unread chat, add, block, unblock, sign out). The chat pane handles
everything inside the open chat.
"""

from __future__ import annotations

import contextlib
import os
from typing import TYPE_CHECKING, cast

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.css.query import NoMatches
from textual.notifications import Notification, Notify
from textual.screen import Screen
from textual.widgets import Footer, OptionList

from tui.alerts import desktop_notification
from tui.client.models import Friend
from tui.core.conversation import Merge
from tui.core.events import (
    ChatLoaded,
    ChatOpened,
    ConnectionChanged,
    Event,
    FriendsChanged,
    MessagesAdded,
    OutboxChanged,
    ProfileLoaded,
    SendRefused,
    SessionEnded,
    TypingChanged,
    WindowMoved,
)
from tui.core.sync import SyncCore
from tui.screens.account import AccountScreen
from tui.screens.attach import AttachDialog
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
from tui.text import one_line, one_line_preview
from tui.widgets.chat_pane import ChatPane
from tui.widgets.friend_list import REQUESTS, FriendList
from tui.widgets.status_bar import StatusBar

if TYPE_CHECKING:
    from tui.app import PairchatApp


class MainScreen(Screen[None]):
    BINDINGS = [
        # The footer shows the keys of the focused widget first; screen-wide keys that
        # belong to one place (F2 in the friend list, Esc in the chat) are shown there.
        Binding(
            "ctrl+n",
            "next_unread",
            "Next unread",
            show=False,
            tooltip="Open the next chat with unread messages",
            id="main.next_unread",
        ),
        Binding(
            "f7",
            "unsent",
            "Unsent",
            show=False,
            tooltip="Messages the server refused: send one again, or discard it",
            id="main.unsent",
        ),
        Binding("f2", "add_friend", "Add friend", show=False, id="main.add_friend"),
        Binding("f4", "block", "Block", show=False, id="main.block"),
        Binding("f6", "unblock", "Unblock", show=False, id="main.unblock"),
        Binding(
            "f3",
            "toggle_mute",
            "Mute",
            show=False,
            tooltip="Mute or unmute the open chat: no bell, toast or notification",
            id="main.mute",
        ),
        Binding(
            "f8",
            "toggle_compact",
            "Compact view",
            show=False,
            tooltip="One line per message, or the roomier layout",
            id="main.compact",
        ),
        Binding(
            "f9",
            "sign_out",
            "Sign out",
            show=False,
            tooltip="Sign out: the token is revoked and deleted",
            id="main.sign_out",
        ),
        Binding(
            "f10",
            "account",
            "Account",
            show=False,
            tooltip="Your account: SSH keys (add one with a code, remove one)",
            id="main.account",
        ),
        Binding(
            "pageup",
            "older",
            "Older",
            show=False,
            tooltip="Scroll the messages up; at the top, load older ones",
            id="main.page_up",
        ),
        Binding(
            "pagedown",
            "newer",
            "Newer",
            show=False,
            tooltip="Scroll the messages down",
            id="main.page_down",
        ),
        Binding(
            "escape",
            "escape",
            "Friends",
            show=False,
            tooltip="Back to the friend list (closes the search first)",
            id="main.escape",
        ),
        Binding(
            "tab",
            "app.focus_next",
            "Next pane",
            show=False,
            tooltip="Friend list, messages, message box (Shift+Tab goes back)",
            id="main.focus_next",
        ),
        # Alt+1…9 and Alt+0 open chat 1…10 of the list, as in irssi and WeeChat; one Help row.
        *(
            Binding(
                f"alt+{number % 10}",
                f"open_number({number})",
                "Chat N" if number == 1 else "",
                show=False,
                tooltip="Alt+1…Alt+9: open chat 1…9 of the list (Alt+0: the 10th)",
                id=f"main.chat_{number}",
            )
            for number in range(1, 11)
        ),
    ]

    def __init__(self, core: SyncCore) -> None:
        super().__init__()
        self.core = core
        self._toasts: dict[str, Notification] = {}

    @property
    def papp(self) -> PairchatApp:
        return cast("PairchatApp", self.app)

    def compose(self) -> ComposeResult:
        app = self.papp
        yield StatusBar(self.core.me, self.core.session.display_name, id="status")
        with Horizontal(id="body"):
            yield FriendList(clock=app.clock, start_message=self.start_message, id="friends")
            yield ChatPane(self.core, clock=app.clock, compact=app.config.compact, id="chat")
        yield Footer(compact=True)

    @property
    def friend_list(self) -> FriendList:
        return self.query_one(FriendList)

    @property
    def pane(self) -> ChatPane:
        return self.query_one(ChatPane)

    @property
    def status(self) -> StatusBar:
        return self.query_one(StatusBar)

    def on_mount(self) -> None:
        self.core.subscribe(self._on_core_event)
        self._outbox_counts()
        self.friend_list.focus()
        self.set_interval(60.0, self._minute)
        self.run_worker(self.core.run(), name="sync core", group="core", exit_on_error=True)

    def on_resize(self) -> None:
        # On a narrow terminal the chat gets the room: the list shrinks to names.
        self.friend_list.styles.width = 26 if self.size.width >= 72 else 18

    def _minute(self) -> None:
        # Redraw only (ages in the list, "Today" after midnight): no I/O here.
        self.friend_list.redraw()
        self.pane.chat_log.refresh_day()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "unsent":
            return self.core.outbox.failed_count > 0 or None
        return True

    # -- the core's events ---------------------------------------------------------------
    def _on_core_event(self, event: Event) -> None:
        if not self.is_mounted:
            return
        with contextlib.suppress(NoMatches):  # the screen is being taken down: no widgets
            self._route(event)

    def _route(self, event: Event) -> None:
        core = self.core
        match event:
            case FriendsChanged(rose=rose):
                self._show_friends()
                self.pane.friends_changed()
                for friend in rose:
                    self._announce(friend)
            case ChatOpened(peer=peer):
                self._show_friends()
                self.pane.chat_opened(peer)
                if peer is not None:
                    self._dismiss_toast(peer)
            case ChatLoaded():
                self.pane.chat_loaded()
            case MessagesAdded(peer=peer, merge=merge):
                if peer == core.open_peer:
                    self.pane.messages_added(merge)
                    self._ring_for_open_chat(peer, merge)
            case OutboxChanged():
                self.pane.outbox_changed()
                self._outbox_counts()
            case SendRefused(item=item):
                what = f"{one_line(item.file_name)} not sent" if item.file_name else "Not sent"
                self.notify(
                    f"{what} to {item.to}: {(item.error or 'refused').rstrip('.')}. "
                    "F7 to retry or discard it.",
                    severity="error",
                    markup=False,
                    timeout=8,
                )
            case ConnectionChanged(state=state):
                self.status.connection = state
            case SessionEnded(reason=reason):
                self.papp.session_ended(reason)
            case TypingChanged(peer=peer):
                self.pane.typing_changed(peer)
            case WindowMoved(peer=peer, focus=focus):
                if peer == core.open_peer:
                    self.pane.window_moved(focus)
            case ProfileLoaded():
                self.status.display_name = core.session.display_name
                self.status.refresh()
                self.status.connection = core.connection.current

    def _show_friends(self) -> None:
        core = self.core
        self.friend_list.show(
            core.ordered_friends(), core.open_peer, core.prefs.muted, len(core.requests)
        )

    def _outbox_counts(self) -> None:
        self.status.pending = self.core.outbox.pending_count
        self.status.failed = self.core.outbox.failed_count
        self.refresh_bindings()

    def _announce(self, friend: Friend) -> None:
        count = friend.unread
        noun = "message" if count == 1 else "messages"
        label = self.friend_list.whose(
            friend.username, one_line(friend.display_name or friend.username)
        )
        self._dismiss_toast(friend.username)
        toast = Notification(
            f"{label}: {count} unread {noun} (Ctrl+N to open)", "New message", timeout=6
        )
        self._toasts[friend.username] = toast
        self.app.post_message(Notify(toast))
        self._alert(label, f"{count} unread {noun}", ring=self.papp.config.bell != "off")

    def _ring_for_open_chat(self, peer: str, merge: Merge) -> None:
        """With ``bell = "all"``: ring for the open chat's new messages that are not seen."""
        if self.papp.config.bell != "all" or self.core.is_muted(peer):
            return
        log = self.pane.chat_log
        theirs = [m for m in merge.newer if m.author.lower() != self.core.me]
        if theirs and not (log.attentive and log.follow):
            label = self.friend_list.whose(peer, one_line(self.core.label(peer)))
            newest = theirs[-1]
            self._alert(label, one_line_preview(newest.text, newest.attachment), ring=True)

    def _alert(self, title: str, body: str, ring: bool) -> None:
        if ring:
            self.app.bell()
        kind = self.papp.config.notify
        driver = self.app._driver  # Textual's own channel to the terminal (as copy_to_clipboard)
        if kind != "off" and driver is not None:
            in_tmux = bool(os.environ.get("TMUX"))
            driver.write(desktop_notification(kind, f"pairchat: {title}", body, in_tmux))

    def _dismiss_toast(self, peer: str) -> None:
        toast = self._toasts.pop(peer, None)
        if toast is not None and toast in self.app._notifications:
            self.app._unnotify(toast)  # Textual has no public "close this toast" yet

    @on(ChatPane.Note)
    def _note(self, event: ChatPane.Note) -> None:
        self.status.note = event.text

    # -- intents -----------------------------------------------------------------------------
    @on(OptionList.OptionSelected, "#friends")
    def _friend_chosen(self, event: OptionList.OptionSelected) -> None:
        if event.option.id == REQUESTS:
            self.app.push_screen(RequestsDialog(self.core), self._request_chosen)
        elif event.option.id:
            self.open_chat(event.option.id)

    @on(ChatPane.ConfirmWanted)
    def _confirm(self, event: ChatPane.ConfirmWanted) -> None:
        def answered(ok: bool | None) -> None:
            if ok:
                event.then()

        self.app.push_screen(ConfirmDialog(event.question), answered)

    @on(ChatPane.ReactWanted)
    def _react(self, event: ChatPane.ReactWanted) -> None:
        self.app.push_screen(ReactionPicker(event.mine), event.then)

    @on(ChatPane.LinksWanted)
    def _links(self, event: ChatPane.LinksWanted) -> None:
        self.app.push_screen(LinksDialog(event.links))

    @on(ChatPane.AttachWanted)
    def _attach_wanted(self, event: ChatPane.AttachWanted) -> None:
        def queued(path: str | None) -> None:
            if path is not None and event.peer == self.core.open_peer:
                self.pane.newest()  # from a window far back too: the file is shown pending

        self.app.push_screen(AttachDialog(self.core, event.peer), queued)

    def _request_chosen(self, peer: str | None) -> None:
        if peer:
            self.open_chat(peer)

    def open_chat(self, peer: str) -> None:
        self.core.open_chat(peer)
        self.friend_list.highlight(peer)
        self.pane.composer.focus()

    def start_message(self, peer: str, text: str) -> None:
        """Text typed in the friend list: ``peer``'s chat opens and the text goes into its
        message box at the cursor (after the draft, when the chat was not open). The
        focus moves now, not later, so the next key goes to the box too."""
        self.open_chat(peer)
        composer = self.pane.composer
        if composer.disabled or composer.peer != peer:
            return
        self.set_focus(composer)
        composer.insert_text(text)

    def action_next_unread(self) -> None:
        peer = self.core.next_unread()
        if peer is None:
            self.notify("No unread messages.", markup=False, timeout=2)
            return
        self.open_chat(peer)

    def action_open_number(self, number: int) -> None:
        """Open the ``number``-th chat of the friend list (as it is drawn), from anywhere."""
        friends = self.core.ordered_friends()
        if 1 <= number <= len(friends):
            self.open_chat(friends[number - 1].username)

    def action_escape(self) -> None:
        if self.pane.query_one("#search").display:
            self.pane.close_search(refocus=True)
        else:
            self.friend_list.focus()

    def action_older(self) -> None:
        self.pane.scroll_older()

    def action_newer(self) -> None:
        self.pane.scroll_newer()

    def action_toggle_mute(self) -> None:
        if self.friend_list.has_focus or self.core.open_peer is None:
            peer = self.friend_list.highlighted_username
        else:
            peer = self.core.open_peer
        if peer is None:
            return
        muted = self.core.toggle_mute(peer)
        self.notify(f"{'Muted' if muted else 'Unmuted'} {peer}.", markup=False, timeout=3)

    def action_toggle_compact(self) -> None:
        self.papp.config.compact = not self.papp.config.compact
        self.pane.chat_log.set_compact(self.papp.config.compact)

    def action_add_friend(self) -> None:
        def added(username: str | None) -> None:
            if username:
                self.notify(f"Added {username}.", markup=False, timeout=3)
                self.open_chat(username.lower())

        self.app.push_screen(AddFriendDialog(self.core), added)

    def action_block(self) -> None:
        if self.friend_list.has_focus or self.core.open_peer is None:
            peer = self.friend_list.highlighted_username
        else:
            peer = self.core.open_peer
        if peer is None:
            self.notify("Choose a friend to block first.", markup=False)
            return

        def blocked(username: str | None) -> None:
            if username:
                self.notify(f"Blocked {username}.", markup=False, timeout=3)
                self.friend_list.focus()

        self.app.push_screen(BlockDialog(self.core, peer), blocked)

    def action_unblock(self) -> None:
        def unblocked(username: str | None) -> None:
            if username:
                self.notify(f"Unblocked {username}.", markup=False, timeout=3)

        self.app.push_screen(UnblockDialog(self.core), unblocked)

    def action_unsent(self) -> None:
        self.app.push_screen(UnsentDialog(self.core))

    def action_account(self) -> None:
        self.app.push_screen(AccountScreen(self.core))

    def action_sign_out(self) -> None:
        def confirmed(username: str | None) -> None:
            if username:
                self.papp.sign_out(self.core)

        self.app.push_screen(SignOutDialog(self.core), confirmed)

    def on_screen_resume(self) -> None:
        # Back from a dialog: what the chat shows is in front of the user again.
        self.pane.chat_log.report_seen()
