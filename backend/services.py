"""The composition root: ``build_services(settings)`` wires storage, services and wake-ups.

The app factory, the ``pairchat-server`` operator commands and the tests all
build their services here, so there is one way to get a working backend and no
globals: each call owns its open files until ``close()`` (or the ``with`` block
ends). Flask is not needed to use it.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import TracebackType

from argon2 import PasswordHasher

from backend.accounts import Accounts
from backend.chat import Chat
from backend.login_throttle import LoginThrottle
from backend.notify import FeedWatcher, Notifier
from backend.settings import Settings
from backend.storage.accounts import AccountStore
from backend.storage.conversations import ConversationStore


@dataclass
class Services:
    settings: Settings
    conversations: ConversationStore
    account_store: AccountStore
    accounts: Accounts
    notifier: Notifier
    chat: Chat
    login_throttle: LoginThrottle
    watcher: FeedWatcher | None = None

    def close(self) -> None:
        """Release held long-polls, stop the watcher, close every file."""
        self.notifier.close()
        if self.watcher is not None:
            self.watcher.stop()
        self.conversations.close()
        self.account_store.close()

    def __enter__(self) -> Services:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def build_services(settings: Settings) -> Services:
    """Everything the backend needs, over ``settings.data_dir`` (created if absent)."""
    data_dir = settings.data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    synchronous = settings.sqlite_synchronous
    account_store = AccountStore(data_dir, synchronous=synchronous)
    hasher = PasswordHasher(
        time_cost=settings.argon2_time_cost, memory_cost=settings.argon2_memory_cost
    )
    accounts = Accounts(account_store, hasher)
    notifier = Notifier(max_waiters=settings.waiter_slots)
    conversations = ConversationStore(
        data_dir, max_open=settings.max_open_conversations, synchronous=synchronous
    )
    chat = Chat(conversations, accounts, notifier, max_wait=settings.max_wait)
    services = Services(
        settings=settings,
        conversations=conversations,
        account_store=account_store,
        accounts=accounts,
        notifier=notifier,
        chat=chat,
        login_throttle=LoginThrottle(settings.login_rate_limit),
    )
    if settings.watch_interval > 0:
        services.watcher = FeedWatcher(account_store, notifier, settings.watch_interval).start()
    return services
