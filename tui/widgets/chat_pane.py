"""The chat pane (right): title, message log, "N new ↓", search bar, notices and composer.

It owns the widgets of one open chat and turns their events into the core's
intents: Enter → :meth:`SyncCore.send` (with the chat the text was typed in),
every edit → :meth:`SyncCore.set_draft`, what the log showed →
:meth:`SyncCore.seen`, the top of the log → an older page, Ctrl+F → a search that
runs in a worker (Esc cancels it; typing goes on meanwhile), Ctrl+End (End in the
messages) → the newest messages (:meth:`SyncCore.show_newest`: one request when a
window far back is shown). The main screen passes it the core's events for the
open chat (:meth:`chat_opened`, …).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message as TextualMessage
from textual.widgets import Input, Static, TextArea

from tui.client.errors import describe
from tui.client.http import ApiError, ServerUnreachable
from tui.client.models import Message
from tui.config import default_download_dir
from tui.core.conversation import Merge
from tui.core.outbox import OutboxFull
from tui.core.sync import MAX_MESSAGE, SyncCore
from tui.formatting import Clock
from tui.text import fit, key_label, one_line, one_line_preview, url_spans
from tui.widgets.chat_log import ChatLog
from tui.widgets.composer import MAX_DRAFT, Composer
from tui.widgets.external_editor import (
    EditorUnavailable,
    edit_in_editor,
    editor_command,
    editor_found,
)

MESSAGE_HINT = "Enter sends · Ctrl+J new line"  # fits at 80x24; F1 lists Alt+Enter too
NO_FILES_HERE = (
    "Files are not sent or saved through a door: this pairchat runs on the server's "
    "machine, so a path would be one of its files. Use pairchat on your own computer."
)
NO_EDITOR_HERE = (
    "No editor through a door: this pairchat runs on the server's machine. Write the "
    "message here (Alt+Enter or Ctrl+J for a new line)."
)
NEWEST = "chat.newest"
NEWEST_KEYS = "end,ctrl+end"
"""Back to the newest: End in the messages, Ctrl+End anywhere in the pane (the message
box and the search field keep End for their cursor)."""


class SearchBar(Input):
    """The search field; Escape closes it (and stops a search in progress)."""

    BINDINGS = [Binding("escape", "close", "Close search", id="search.close")]

    def action_close(self) -> None:
        self.query_ancestor(ChatPane).close_search(refocus=True)


class ChatPane(Vertical):
    BINDINGS = [
        Binding("ctrl+f", "search", "Search", show=False, id="chat.search"),
        Binding(
            "ctrl+o",
            "attach",
            "Attach",
            show=False,  # shown by the message box; in the messages the footer is full
            tooltip="Send a file: type its path (Tab completes)",
            id="chat.attach",
        ),
        Binding(
            "ctrl+e",
            "editor",
            "Editor",
            show=False,  # the message box shows it where an editor can start; else this says why
            tooltip="Write the message in $VISUAL or $EDITOR (not through a door)",
            id="chat.editor",
        ),
        Binding(
            NEWEST_KEYS,
            "newest",
            "Newest",
            tooltip="Back to the newest messages (from the message box too)",
            id=NEWEST,
        ),
    ]

    class Note(TextualMessage):
        """A line for the status bar (search progress and results); empty clears it."""

        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    class ConfirmWanted(TextualMessage):
        """Ask the person ``question``; run ``then`` on yes (the screen owns dialogs)."""

        def __init__(self, question: str, then: Callable[[], None]) -> None:
            super().__init__()
            self.question = question
            self.then = then

    class ReactWanted(TextualMessage):
        """Pick a reaction (``mine``: the one I have); ``then`` gets it, or None (the screen
        owns dialogs)."""

        def __init__(self, mine: str | None, then: Callable[[str | None], None]) -> None:
            super().__init__()
            self.mine = mine
            self.then = then

    class AttachWanted(TextualMessage):
        """Ask for a file's path to send to ``peer`` (the screen owns dialogs)."""

        def __init__(self, peer: str) -> None:
            super().__init__()
            self.peer = peer

    class LinksWanted(TextualMessage):
        """Show the chat's ``links`` to open or copy one (the screen owns dialogs)."""

        def __init__(self, links: list[str]) -> None:
            super().__init__()
            self.links = links

    def __init__(
        self, core: SyncCore, *, clock: Clock, compact: bool = False, id: str | None = None
    ) -> None:
        super().__init__(id=id)
        self.core = core
        self.clock = clock
        self.compact = compact
        self._search_term = ""
        self._search_match: int | None = None
        self._search_trail: list[int] = []
        """Matches already shown, newest first (N goes back along them)."""
        self._notice_text = ""

    def compose(self) -> ComposeResult:
        yield Static("", id="chat-title", markup=False)
        yield ChatLog(self.core.me, clock=self.clock, compact=self.compact, id="log")
        yield Static("", id="new-marker", markup=False)
        yield SearchBar(placeholder="Search this chat: Enter for the next older match", id="search")
        yield Static("", id="composer-notice", markup=False)
        yield Static("", id="composer-mode", markup=False)
        yield Composer(max_length=MAX_MESSAGE, id="composer")

    @property
    def chat_log(self) -> ChatLog:
        return self.query_one(ChatLog)

    @property
    def composer(self) -> Composer:
        return self.query_one(Composer)

    def on_mount(self) -> None:
        self.query_one("#search").display = False
        self.query_one("#new-marker").display = False
        self.query_one("#composer-notice").display = False
        self.query_one("#composer-mode").display = False
        self.set_interval(1.0, self._typing_tick)
        composer = self.composer
        composer.disabled = True
        composer.recall_source = self._my_texts
        composer.refusal = self._outbox_refusal
        composer.files = self._local_files()
        composer.editor = self._local_files() and editor_found()
        self.watch(self.chat_log, "new_below", self._show_new_marker)
        self.watch(self.chat_log, "behind", self._show_new_marker)
        self._set_title()

    def _outbox_refusal(self, peer: str) -> str | None:
        full = self.core.outbox.full_for(peer)
        return None if full is None else full.message

    def _my_texts(self) -> list[str]:
        peer = self.composer.peer
        chat = self.core.chat
        pending = [i.text for i in reversed(self.core.pending_for(peer))] if peer else []
        sent = chat.my_texts() if chat is not None and chat.peer == peer else []
        return [text for text in dict.fromkeys([*pending, *sent]) if text]  # a file's: none

    # -- the core's events for the open chat --------------------------------------------
    def chat_opened(self, peer: str | None) -> None:
        composer = self.composer
        if composer.peer is not None:
            draft = composer._stash if composer.editing is not None else composer.text
            self.core.set_draft(composer.peer, draft)
            self.core.flush_drafts()
        composer.editing = composer.replying = None
        self._show_mode()
        self.close_search(refocus=False)
        self.chat_log.show(self.core.chat)
        composer.peer = peer
        composer.placeholder = f"Message @{peer} \u00b7 {MESSAGE_HINT}" if peer else ""
        composer.load_text(self.core.draft(peer) if peer else "")
        composer.move_cursor(composer.document.end)
        composer.disabled = peer is None
        self._notice("")
        if peer is not None:
            self.chat_log.set_pending(self.core.pending_for(peer))
        self._set_title()

    def chat_loaded(self) -> None:
        self.chat_log.loaded()
        self._receipts()
        self._set_title()

    def window_moved(self, focus: int | None) -> None:
        """The chat now shows a window around an old message (lay it out, select it), or
        the newest page after a jump back (``focus`` None)."""
        self.chat_log.moved(focus)

    def messages_added(self, merge: Merge) -> None:
        self.chat_log.added(merge)
        peer = self.core.open_peer
        if peer is not None and any(m.author.lower() == peer for m in merge.newer):
            self.core.typing_until.pop(peer, None)  # their message ends "typing…"
            self._set_title()
        self._receipts()

    def outbox_changed(self) -> None:
        peer = self.core.open_peer
        if peer is not None:
            self.chat_log.changes = self.core.outbox.changes_for(peer)
            self.chat_log.set_pending(self.core.pending_for(peer))

    def friends_changed(self) -> None:
        self._receipts()
        self._set_title()

    def typing_changed(self, peer: str) -> None:
        if peer == self.core.open_peer:
            self._set_title()

    def _typing_tick(self) -> None:
        if self.core.open_peer in self.core.typing_expired():
            self._set_title()

    def _receipts(self) -> None:
        """Mark my newest message the peer has read with "seen"."""
        chat = self.core.chat
        if chat is None:
            return
        friend = self.core.friends.get(chat.peer) or self.core.requests.get(chat.peer)
        read = friend.peer_read_up_to if friend is not None else None
        seen = None
        if read:
            for message in reversed(chat.messages):
                if message.id <= read and message.author.lower() == self.core.me:
                    seen = message.id
                    break
        if seen != self.chat_log.seen_id:
            self.chat_log.seen_id = seen
            self.chat_log.refresh()

    def _set_title(self) -> None:
        title = self.query_one("#chat-title", Static)
        peer = self.core.open_peer
        width = title.size.width or 50
        if peer is None:
            title.update(" No chat open")
            return
        label = one_line(self.core.label(peer))
        text = f" {label} (@{peer})" if label != peer else f" @{peer}"
        if self.core.is_typing(peer):
            text += " \u00b7 typing\u2026"
        title.update(fit(text, width))

    def on_resize(self) -> None:
        self._set_title()

    def _show_new_marker(self) -> None:
        """The bar under the messages: "↓ N new messages below" (only what is newer than
        the newest seen), or "↓ back to the newest" in a window far back with nothing new;
        it names the key that works where the focus is."""
        log = self.chat_log
        count = log.new_below
        marker = self.query_one("#new-marker", Static)
        marker.display = count > 0 or log.behind
        if not marker.display:
            return
        noun = "message" if count == 1 else "messages"
        what = f"{count} new {noun} below" if count else "back to the newest"
        marker.update(f" \u2193 {what} ({self._newest_key()})")

    def _newest_key(self) -> str:
        """The key that goes to the newest from where the focus is, as the user mapped it:
        what Textual would run for it now (in the message box End moves the cursor, so
        there it is Ctrl+End)."""
        if self.screen.is_active:
            for key, active in self.screen.active_bindings.items():
                if active.binding.id == NEWEST:
                    return key_label(key)
        # The focus is outside the pane (the friend list): Tab goes to the messages.
        config = getattr(self.app, "config", None)
        keymap = getattr(config, "keymap", None) or {}
        return f"Tab, {key_label(str(keymap.get(NEWEST, NEWEST_KEYS)).split(',')[0])}"

    def on_descendant_focus(self) -> None:
        self._show_new_marker()

    def on_descendant_blur(self) -> None:
        self._show_new_marker()

    def action_newest(self) -> None:
        self.newest()

    def newest(self) -> None:
        """Show the newest messages: scroll there, or (a window far back in history is
        shown) replace it with the newest page, in one request."""
        chat = self.core.chat
        log = self.chat_log
        if chat is None or not chat.loaded:
            return
        if not chat.has_more_newer:
            log.action_scroll_end()
            return
        # Not to the bottom of the window first: that would ask for its next page.
        self.workers.cancel_group(self, "older")
        self.workers.cancel_group(self, "newer")
        log.loading_older = False
        log.loading_newer = True  # "loading newer messages…", and no page of the window
        log.refresh()
        self._jump_to_newest(chat.peer)

    @work(exclusive=True, group="jump", exit_on_error=False)
    async def _jump_to_newest(self, peer: str) -> None:
        try:
            if not await self.core.show_newest(peer):
                chat = self.core.chat  # the window met the newest meanwhile: just scroll
                if chat is not None and chat.peer == peer and not chat.has_more_newer:
                    self.chat_log.action_scroll_end()
        except (ApiError, ServerUnreachable) as exc:
            self.app.notify(f"Could not load the newest messages: {describe(exc)}", markup=False)
        finally:
            self.chat_log.loading_newer = False
            self.chat_log.refresh()

    def _notice(self, text: str) -> None:
        if text == self._notice_text:  # on every key: no layout unless it changes
            return
        self._notice_text = text
        notice = self.query_one("#composer-notice", Static)
        notice.display = bool(text)
        notice.update(text)

    # -- composing ------------------------------------------------------------------------
    @on(Composer.Submitted)
    def _submitted(self, event: Composer.Submitted) -> None:
        event.stop()
        try:
            if event.edit is not None:
                self.core.edit(event.peer, event.edit, event.text)
            else:
                self.core.send(event.peer, event.text, reply_to=event.reply_to)
        except OutboxFull as full:  # another instance filled it since Enter was checked
            composer = event.composer
            if composer.peer == event.peer and not composer.text:
                composer.load_text(event.text)  # nothing typed is lost
                composer.move_cursor(composer.document.end)
            self._outbox_full(full.message)
            return
        if event.peer == event.composer.peer:
            self.core.set_draft(event.peer, event.composer.text)
        if event.peer == self.core.open_peer:
            self.newest()  # from a window far back too: what was sent is shown

    @on(Composer.Cut)
    def _cut(self, event: Composer.Cut) -> None:
        event.stop()
        self.app.notify(
            f"The message box holds {MAX_DRAFT:,} characters: {event.dropped:,} past that "
            f"were not kept (a message is at most {MAX_MESSAGE:,}). Ctrl+E edits in your editor.",
            title="Text cut",
            severity="warning",
            markup=False,
        )

    @on(Composer.Refused)
    def _refused(self, event: Composer.Refused) -> None:
        event.stop()
        self._outbox_full(event.reason)

    def _outbox_full(self, reason: str) -> None:
        self.app.notify(
            reason, title="Not sent: the outbox is full", severity="warning", markup=False
        )

    @on(Composer.TooLong)
    def _too_long(self, event: Composer.TooLong) -> None:
        event.stop()
        self._notice(
            f"Too long by {event.over} characters (the limit is {MAX_MESSAGE}): "
            "nothing was sent. Shorten it or split it."
        )

    @on(Composer.EditLast)
    def _edit_last(self, event: Composer.EditLast) -> None:
        chat = self.core.chat
        if chat is None or chat.peer != self.composer.peer:
            return
        mine = chat.my_last(before_id=event.before)
        if mine is not None:
            self.composer.start_edit(mine.id, mine.text)
            self.chat_log.select(mine.id)

    @on(Composer.ModeChanged)
    def _mode_changed(self, event: Composer.ModeChanged) -> None:
        self._show_mode()

    def _show_mode(self) -> None:
        composer = self.composer
        line = self.query_one("#composer-mode", Static)
        chat = self.core.chat
        if composer.editing is not None:
            text = "\u270e Editing your message \u00b7 Enter saves \u00b7 Esc cancels"
        elif composer.replying is not None:
            original = chat.get(composer.replying) if chat else None
            quote = (
                one_line_preview(original.text, original.attachment)
                if original
                else "an earlier message"
            )
            text = f"\u21b3 Replying to \u201c{quote}\u201d \u00b7 Esc cancels"
        else:
            text = ""
        line.display = bool(text)
        line.update(fit(text, line.size.width or 60))

    @on(ChatLog.Act)
    def _act(self, event: ChatLog.Act) -> None:
        chat = self.core.chat
        message = chat.get(event.message_id) if chat else None
        if event.action in ("next_match", "previous_match"):
            self._next_match(older=event.action == "next_match")
            return
        if chat is None or message is None:
            self.app.notify("Select a message first (\u2191 \u2193).", markup=False, timeout=3)
            return
        mine = message.author.lower() == self.core.me
        if event.action == "edit":
            if not mine or message.deleted:
                self.app.notify("You can edit only your own messages.", markup=False, timeout=3)
                return
            self.composer.start_edit(message.id, message.text)
            self.composer.focus()
        elif event.action == "reply" and not message.deleted:
            self.composer.start_reply(message.id)
            self.composer.focus()
        elif event.action == "delete":
            if not mine or message.deleted:
                self.app.notify("You can delete only your own messages.", markup=False, timeout=3)
                return

            def confirmed() -> None:
                try:
                    self.core.delete(chat.peer, message.id)
                except OutboxFull as full:
                    self._outbox_full(full.message)

            self.post_message(
                self.ConfirmWanted("Delete this message? It cannot be undone.", confirmed)
            )
        elif event.action == "react":
            if message.deleted:
                self.app.notify("A deleted message takes no reactions.", markup=False, timeout=3)
                return
            current = next((e for e, names in message.reactions if self.core.me in names), None)

            def chosen(emoji: str | None) -> None:
                if emoji:
                    self._send_reaction(chat.peer, message.id, "" if emoji == current else emoji)

            self.post_message(self.ReactWanted(current, chosen))
        elif event.action == "original" and message.reply_to is not None:
            self._go_to(chat.peer, message.reply_to)
        elif event.action == "save":
            if not self._local_files():
                self.app.notify(NO_FILES_HERE, severity="warning", markup=False)
                return
            if message.attachment is None or message.deleted:
                self.app.notify("This message has no file to save.", markup=False, timeout=3)
                return
            self._save_file(chat.peer, message.id, message.attachment.name)

    def _local_files(self) -> bool:
        config = getattr(self.app, "config", None)
        return bool(getattr(config, "local_files", True))

    def _download_dir(self) -> Path:
        config = getattr(self.app, "config", None)
        folder = getattr(config, "download_dir", None)
        return Path(folder) if folder is not None else default_download_dir()

    @work(group="save", exit_on_error=False)
    async def _save_file(self, peer: str, message_id: int, name: str) -> None:
        self._status_note(f"saving {one_line(name)}\u2026")
        try:
            saved = await self.core.save_file(peer, message_id, self._download_dir())
        except (ApiError, ServerUnreachable) as exc:
            self._status_note("")
            self.app.notify(f"Could not save {one_line(name)}: {describe(exc)}", markup=False)
            return
        except OSError as exc:
            self._status_note("")
            where = exc.filename or self._download_dir()
            self.app.notify(
                f"Could not save {one_line(name)} in {where}: {exc.strerror or exc}",
                severity="error",
                markup=False,
            )
            return
        self._status_note(f"saved {one_line(str(saved))}")
        self.app.notify(f"Saved to {one_line(str(saved))}", title="File saved", markup=False)

    @on(Composer.AttachRequested)
    def _attach_requested(self, event: Composer.AttachRequested) -> None:
        event.stop()
        self.action_attach()

    def action_attach(self) -> None:
        peer = self.core.open_peer
        if not self._local_files():
            self.app.notify(NO_FILES_HERE, severity="warning", markup=False)
            return
        if peer is None:
            self.app.notify("Open a chat to send a file in it.", markup=False)
            return
        self.post_message(self.AttachWanted(peer))

    @work(group="react", exit_on_error=False)
    async def _send_reaction(self, peer: str, message_id: int, emoji: str) -> None:
        try:
            await self.core.react(peer, message_id, emoji)
        except (ApiError, ServerUnreachable) as exc:
            self.app.notify(f"Could not react: {describe(exc)}", markup=False)

    @work(exclusive=True, group="jump", exit_on_error=False)
    async def _go_to(self, peer: str, message_id: int) -> None:
        try:
            found = await self.core.show_message(peer, message_id)
        except (ApiError, ServerUnreachable) as exc:
            self.app.notify(f"Could not load it: {describe(exc)}", markup=False)
            return
        if found:
            self.chat_log.select(message_id)
        else:
            self.app.notify("That message is not there any more.", markup=False, timeout=3)

    @on(ChatLog.NeedNewer)
    def _need_newer(self, event: ChatLog.NeedNewer) -> None:
        self._load_newer(event.peer)

    @work(exclusive=True, group="newer", exit_on_error=False)
    async def _load_newer(self, peer: str) -> None:
        try:
            await self.core.load_newer(peer)
        except (ApiError, ServerUnreachable) as exc:
            self.chat_log.loading_newer = False
            self.app.notify(f"Could not load newer messages: {describe(exc)}", markup=False)

    @on(TextArea.Changed, "#composer")
    def _changed(self, event: TextArea.Changed) -> None:
        composer = self.composer
        if composer.peer is not None and composer.editing is None:
            self.core.set_draft(composer.peer, composer.text)
            if composer.text.strip():
                self.core.composing(composer.peer)
        over = len(composer.text) - MAX_MESSAGE
        if over > 0:
            self._notice(f"{over} characters too long (the limit is {MAX_MESSAGE})")
        else:
            self._notice("")

    @on(Composer.EditorRequested)
    def _editor_requested(self, event: Composer.EditorRequested) -> None:
        event.stop()
        self.action_editor()

    def action_editor(self) -> None:
        """Ctrl+E: write the message in the user's editor. Refused with a notice, the box
        untouched, when there is none to start (always through a door)."""
        composer = self.composer
        if composer.peer is None:
            return
        if not self._local_files():
            self.app.notify(NO_EDITOR_HERE, severity="warning", markup=False)
            return
        try:
            command = editor_command()
            with tempfile.TemporaryDirectory(prefix="pairchat-") as folder:
                text = edit_in_editor(self.app, command, composer.text, Path(folder))
        except EditorUnavailable as exc:
            self.app.notify(str(exc), severity="error", markup=False)
            composer.focus()
            return
        composer.load_bounded(text)
        composer.move_cursor(composer.document.end)
        composer.focus()

    # -- the log's requests ---------------------------------------------------------------
    @on(ChatLog.Seen)
    def _seen(self, event: ChatLog.Seen) -> None:
        self.core.seen(event.peer, event.message_id)

    @on(ChatLog.LinksWanted)
    def _links(self, event: ChatLog.LinksWanted) -> None:
        chat = self.core.chat
        if chat is None or chat.peer != event.peer:
            return
        messages = sorted(chat.messages, key=lambda m: (m.id != event.selected, -m.id))
        links = [url for m in messages for _, _, url in url_spans(m.text)]
        self.post_message(self.LinksWanted(list(dict.fromkeys(links))))

    @on(ChatLog.NeedOlder)
    def _need_older(self, event: ChatLog.NeedOlder) -> None:
        self._load_older(event.peer)

    @work(exclusive=True, group="older", exit_on_error=False)
    async def _load_older(self, peer: str) -> None:
        try:
            await self.core.load_older(peer)
        except (ApiError, ServerUnreachable) as exc:
            self.chat_log.loading_older = False
            self.chat_log.refresh()
            self.app.notify(f"Could not load older messages: {describe(exc)}", markup=False)

    def scroll_older(self) -> None:
        log = self.chat_log
        if log.scroll_offset.y <= 0:
            log.request_older()
        else:
            log.scroll_page_up(animate=False)

    def scroll_newer(self) -> None:
        self.chat_log.scroll_page_down(animate=False)

    # -- search ---------------------------------------------------------------------------
    def action_search(self) -> None:
        if self.core.open_peer is None:
            self.app.notify("Open a chat to search it.", markup=False)
            return
        search = self.query_one("#search", Input)
        search.display = True
        search.focus()

    def close_search(self, refocus: bool) -> None:
        self.workers.cancel_group(self, "search")
        search = self.query_one("#search", Input)
        was_open = search.display
        search.display = False
        search.value = ""
        self._search_term = ""
        self._search_match = None
        self._search_trail = []
        self._status_note("")
        if self.chat_log.search_term:
            self.chat_log.set_search("", None)
        if refocus and was_open and not self.composer.disabled:
            self.composer.focus()

    @on(Input.Submitted, "#search")
    def _search_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        term = event.value.strip()
        peer = self.core.open_peer
        if not term or peer is None:
            return
        if term != self._search_term:
            self._search_term = term
            self._search_match = None
            self._search_trail = []
        self._status_note("searching\u2026 (Esc stops)")
        self._search(peer, term, self._search_match)

    @work(exclusive=True, group="search", exit_on_error=False)
    async def _search(self, peer: str, term: str, before: int | None) -> None:
        try:
            found = await self.core.find(peer, term, before)
            if found is not None and not await self.core.show_message(peer, found.id):
                found = None
        except (ApiError, ServerUnreachable) as exc:
            self._status_note(f"search stopped: {describe(exc)}")
            return
        self._show_match(term, found)

    def _show_match(self, term: str, found: Message | None) -> None:
        if term != self._search_term:
            return
        if found is None:
            where = "older" if self._search_match is not None else "in this chat"
            self._status_note(f"no {where} match for \u201c{one_line(term)}\u201d")
            return
        self._search_match = found.id
        if found.id not in self._search_trail:
            self._search_trail.append(found.id)
        number = self._search_trail.index(found.id) + 1
        # Short enough for the status line at 60 columns: " alice · ● connected · " + this.
        self._status_note(f"match {number} \u00b7 n older, N newer, Esc ends")
        self.chat_log.set_search(term, found.id)
        self.chat_log.select(found.id)
        self.chat_log.focus()

    def _next_match(self, older: bool) -> None:
        peer = self.core.open_peer
        if not self._search_term or peer is None or self._search_match is None:
            self.app.notify("Search first (Ctrl+F).", markup=False, timeout=2)
            return
        trail = self._search_trail
        index = trail.index(self._search_match)
        if older and index + 1 < len(trail):
            self._show_known(trail[index + 1])
        elif older:
            self._status_note("searching\u2026")
            self._search(peer, self._search_term, self._search_match)
        elif index > 0:
            self._show_known(trail[index - 1])
        else:
            self._status_note("no newer match")

    def _show_known(self, message_id: int) -> None:
        peer = self.core.open_peer
        if peer is not None:
            self._search(peer, self._search_term, message_id + 1)

    def _status_note(self, text: str) -> None:
        self.post_message(self.Note(text))
