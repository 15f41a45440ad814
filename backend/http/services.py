"""The per-app bundle of services the views use (no globals: one per ``create_app``)."""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app

from backend.accounts import Accounts
from backend.chat import Chat
from backend.http.login_throttle import LoginThrottle
from backend.notify import FeedWatcher, Notifier
from backend.storage.accounts import AccountStore
from backend.storage.conversations import ConversationStore


@dataclass
class Services:
    conversations: ConversationStore
    account_store: AccountStore
    accounts: Accounts
    notifier: Notifier
    chat: Chat
    login_throttle: LoginThrottle
    watcher: FeedWatcher | None = None

    def close(self) -> None:
        self.notifier.close()
        if self.watcher is not None:
            self.watcher.stop()
        self.conversations.close()
        self.account_store.close()


def services() -> Services:
    found: Services = current_app.extensions["pairchat"]
    return found
