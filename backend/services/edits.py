"""Editing and deleting one's own messages.

Only a message's author may change it (``NotYourMessage``; open mode's anonymous
seed client, who may send as anyone, may change anything, see docs/design.md).
An edit replaces the text (checked like a send) and sets ``edited_at``; a
deletion empties the text for good and sets ``deleted`` — the message keeps its
id, a deleted one cannot be edited back (``MessageDeleted``) and deleting it
again changes nothing. Each change takes the pair's next revision in the pair's
file; then both sides' feed rows move to it (so both users' long-polls wake and
clients fetch it with ``after_rev``), and a deletion recounts the peer's unread.
A deleted file message loses its file (bytes and all) in the deletion's
transaction, and its author's files quota gets the bytes back; an edit of one
changes its caption only.
Both count against the author's send rate.

A reaction (``react``) is one emoji per person per message, set, changed or
removed by either of the pair on any message of it; it moves the message's
``rev`` as an edit does (so ``after_rev`` and both feeds carry it), is refused
as a send is (a block, the send rate) and on a deleted message
(``MessageDeleted``; deleting a message drops its reactions).
"""

from __future__ import annotations

import logging
import unicodedata

import arrow

from backend.core.errors import (
    Blocked,
    InvalidField,
    MissingField,
    RateLimited,
    StorageUnavailable,
    UnknownMessage,
)
from backend.core.usernames import Pair, Username
from backend.limits.rate_limit import Limiter
from backend.services.accounts import Accounts
from backend.storage.accounts import LastMessage
from backend.storage.conversation import Changed, Conversation, Message
from backend.storage.conversations import ConversationStore
from backend.wakeups.notify import Notifier, keys_for_message

log = logging.getLogger(__name__)


class MessageEdits:
    def __init__(
        self,
        conversations: ConversationStore,
        accounts: Accounts,
        notifier: Notifier,
        sends: Limiter,
    ) -> None:
        self.conversations = conversations
        self.accounts = accounts
        self.store = accounts.store
        self.notifier = notifier
        self.sends = sends

    def edit(self, pair: Pair, message_id: int, text: str, *, editor: Username | None) -> Message:
        """The message with its new ``text``; ``editor`` None: open mode's anonymous client."""
        if editor is not None:
            peer = pair.other(editor)
            self.accounts.require_exists(editor)
            self.accounts.require_exists(peer)
            peer_side = self.store.contact(peer, editor)
            if peer_side is not None and peer_side.blocked:
                raise Blocked(f"'{peer}' does not accept your messages")
            self._charge(editor)
        conversation = self._conversation(pair, message_id)
        now = int(arrow.utcnow().timestamp())
        changed = conversation.edit_message(message_id, editor, text, now)
        self._announce(pair, changed, conversation)
        return changed.message

    def delete(self, pair: Pair, message_id: int, *, editor: Username | None) -> Message:
        """The message as deleted (again: unchanged); ``editor`` as for ``edit``."""
        if editor is not None:
            self.accounts.require_known(pair.other(editor))
            self._charge(editor)
        conversation = self._conversation(pair, message_id)
        changed = conversation.delete_message(message_id, editor)
        freed = changed.freed  # its file went with it: what it was charged, back
        if freed is not None and freed.charged_to is not None:
            self.store.refund_files(freed.charged_to, freed.size)
        self._announce(pair, changed, conversation)
        return changed.message

    def react(
        self, pair: Pair, message_id: int, emoji: str, *, reactor: Username, signed_in: bool = True
    ) -> Message:
        """The message with ``reactor``'s one reaction set to ``emoji`` (``""``: removed);
        ``signed_in`` False: open mode's anonymous client, who may react as anyone of the pair."""
        if signed_in:
            peer = pair.other(reactor)
            self.accounts.require_exists(reactor)
            self.accounts.require_known(peer)
            peer_side = self.store.contact(peer, reactor)
            if peer_side is not None and peer_side.blocked:
                raise Blocked(f"'{peer}' does not accept your messages")
            self._charge(reactor)
        conversation = self._conversation(pair, message_id)
        changed = conversation.react(message_id, reactor, emoji)
        self._announce(pair, changed, conversation)
        return changed.message

    def _charge(self, editor: Username) -> None:
        if not self.sends.take(editor):
            raise RateLimited(
                "you are changing messages too fast; wait a little",
                retry_after=self.sends.wait(editor),
            )

    def _conversation(self, pair: Pair, message_id: int) -> Conversation:
        conversation = self.conversations.get(pair.low, pair.high, create=False)
        if conversation is None:
            raise UnknownMessage(f"there is no message {message_id} in this conversation")
        return conversation

    def _announce(self, pair: Pair, changed: Changed, conversation: Conversation) -> None:
        """Both feeds move to the new revision; waiters on both users and the pair wake."""
        if not changed.changed:
            return
        message = changed.message
        author = Username(str(message.author).lower())
        peer = pair.high if author == pair.low else pair.low
        try:
            unread = None
            if message.deleted:
                marker = self.store.contact(peer, author)
                unread = conversation.count_from(author, marker.read_marker if marker else 0)
            self.store.record_revision(author, peer, LastMessage.of(message), unread)
        except StorageUnavailable:
            # The change is stored; the feed catches up with the pair's next change.
            log.warning("feed not updated for a change of %s's message to %s", author, peer)
        self.notifier.notify(keys_for_message(author, peer))


MAX_EMOJI_BYTES = 32
_VS16 = "\ufe0f"
_ZWJ = "\u200d"
_KEYCAP = "\u20e3"


def _skin_tone(char: str) -> bool:
    return "\U0001f3fb" <= char <= "\U0001f3ff"


def _regional(char: str) -> bool:
    return "\U0001f1e6" <= char <= "\U0001f1ff"


def _tag(char: str) -> bool:
    return "\U000e0020" <= char <= "\U000e007f"


def _pictograph(char: str) -> bool:
    """A character that can stand as an emoji (a symbol, not a letter or a digit)."""
    return unicodedata.category(char) == "So" and ord(char) >= 0xA9


def parse_emoji(value: object) -> str:
    """A reaction as sent: one emoji grapheme (with its variation selector, a skin
    tone, a ZWJ sequence, a flag or a keycap), or ``""`` to remove one; else why not."""
    if value is None:
        raise MissingField("'emoji' is required (empty: remove my reaction)")
    if not isinstance(value, str):
        raise InvalidField("'emoji' must be a string")
    if value == "":
        return value
    if len(value.encode()) > MAX_EMOJI_BYTES or not _one_emoji(value):
        raise InvalidField("'emoji' must be one emoji")
    return value


def _one_emoji(text: str) -> bool:
    if len(text) == 2 and _regional(text[0]) and _regional(text[1]):
        return True  # a flag
    if len(text) in (2, 3) and text[0] in "0123456789#*" and text[-1] == _KEYCAP:
        return len(text) == 2 or text[1] == _VS16
    position = 0
    while True:  # one element, then (ZWJ element)*
        if position >= len(text) or not _pictograph(text[position]):
            return False
        position += 1
        if position < len(text) and text[position] == _VS16:
            position += 1
        if position < len(text) and _skin_tone(text[position]):
            position += 1
        while position < len(text) and _tag(text[position]):
            position += 1  # a subdivision flag's tags
        if position == len(text):
            return True
        if text[position] != _ZWJ:
            return False
        position += 1
