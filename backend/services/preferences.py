"""Per-user privacy settings (``POST /settings``): read receipts and typing signals.

Both are on unless the user turns them off. Read receipts are symmetric, as in
WhatsApp and Signal: a user who turns them off shows nobody how far they have
read and sees nobody's marker either (``backend/storage/feed.py`` decides
it in the feed's queries). Turning them on or off moves the feed of everyone
who shares a conversation with the user, so their clients show or drop the
"seen" mark at once. Typing off: the user's signals are dropped and nobody's
reach them.
"""

from __future__ import annotations

from backend.core.errors import InvalidField
from backend.core.usernames import Username
from backend.storage.accounts import AccountStore, Privacy
from backend.wakeups.notify import Notifier, user_key

SWITCHES = ("read_receipts", "typing")


def parse_switch(value: object, name: str) -> bool | None:
    """``true``/``false`` (any case, as a form string) or a JSON boolean; None when absent."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise InvalidField(f"'{name}' must be true or false")


class Preferences:
    def __init__(self, store: AccountStore, notifier: Notifier) -> None:
        self.store = store
        self.notifier = notifier

    def get(self, me: Username) -> Privacy:
        return self.store.privacy(me)

    def change(
        self, me: Username, *, read_receipts: bool | None = None, typing: bool | None = None
    ) -> Privacy:
        """Set the given switches (None: unchanged); all of them as they are now."""
        if read_receipts is None and typing is None:
            return self.get(me)
        privacy, moved = self.store.set_privacy(me, read_receipts, typing)
        if moved:
            self.notifier.notify(user_key(owner) for owner in moved)
        return privacy
