"""Typing signals: "bob is typing…" for a few seconds, never stored in the pair's file.

``POST /typing`` says the caller is composing a message to a peer. It is kept as
an expiry time on the peer's feed row in the accounts file (so every worker
process sees it and the peer's ``/updates`` long-poll wakes, wherever it is
held) and is shown as ``typing: true`` until then (``ttl``, 5 s by default). A
pair records at most one signal per half ``ttl`` (a client sends one every few
seconds while composing), so typing costs the peer at most one wake-up per
~2.5 s. Nothing is recorded — and the call still succeeds, revealing nothing —
when either side turned typing off, when the peer blocked or hid the typer, or
when the conversation is not one the peer accepted (a stranger's request). A
message from the typer ends the signal at once. Nothing of it ever reaches the
pair's file or its history.
"""

from __future__ import annotations

from backend.core.clock import now_ms
from backend.core.errors import SameUser
from backend.core.usernames import Username
from backend.services.accounts import Accounts
from backend.wakeups.notify import Notifier, user_key


class Typing:
    def __init__(self, accounts: Accounts, notifier: Notifier, *, ttl: float = 5.0) -> None:
        self.accounts = accounts
        self.store = accounts.store
        self.notifier = notifier
        self.ttl_ms = int(ttl * 1000)

    def signal(self, me: Username, peer: Username) -> bool:
        """``me`` is typing to ``peer``; True when the peer will see it (not told to ``me``)."""
        if me == peer:
            raise SameUser("that is you")
        self.accounts.require_user(peer)
        now = now_ms()
        told = self.store.signal_typing(me, peer, now, now + self.ttl_ms, self.ttl_ms // 2)
        if told:
            self.notifier.notify([user_key(peer)])
        return told
