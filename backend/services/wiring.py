"""The composition root: ``build_services(settings)`` wires storage, services and wake-ups.

The app factory, the ``pairchat-server`` operator commands and the tests all
build their services here, so there is one way to get a working backend and no
globals: each call owns its open files until ``close()`` (or the ``with`` block
ends). Flask is not needed to use it.

Multi-node mode (``settings.node``; docs/cluster.md) swaps three parts and keeps
the rest: the account store is PostgreSQL's, the conversation store asks the
placement map before it uses a pair's file, and the notifier forwards its
wake-ups to the other nodes through Redis (and takes theirs).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import partial
from types import TracebackType
from typing import TYPE_CHECKING

from argon2 import PasswordHasher

from backend.core.extras import MULTI_NODE, require
from backend.core.settings import Settings
from backend.limits.disk import MIB, DiskFloor
from backend.limits.hash_gate import HashGate
from backend.limits.login_throttle import LoginThrottle
from backend.services.accounts import AccountPolicy, Accounts
from backend.services.chat import Chat, Quotas
from backend.services.edits import MessageEdits
from backend.services.files import FileLimits, Files
from backend.services.lifecycle import AccountLifecycle
from backend.services.placement import PLACEMENT_CHANNEL, Placement
from backend.services.preferences import Preferences
from backend.services.presence import Typing
from backend.services.search import Search
from backend.services.ssh_identity import SshIdentity
from backend.storage.accounts import AccountStore, open_account_store
from backend.storage.conversations import ConversationStore
from backend.storage.database import secure_folder
from backend.wakeups.notify import FeedWatcher, Notifier

if TYPE_CHECKING:  # psycopg and redis are loaded only in multi-node mode
    from backend.wakeups.pubsub import RedisWakeups


@dataclass
class Services:
    settings: Settings
    conversations: ConversationStore
    account_store: AccountStore
    accounts: Accounts
    notifier: Notifier
    chat: Chat
    edits: MessageEdits
    files: Files
    search: Search
    typing: Typing
    preferences: Preferences
    ssh_identity: SshIdentity
    lifecycle: AccountLifecycle
    login_throttle: LoginThrottle
    watcher: FeedWatcher | None = None
    placement: Placement | None = None
    wakeups: RedisWakeups | None = None

    def close(self) -> None:
        """Release held long-polls, stop the watcher, close every file."""
        self.notifier.close()
        if self.watcher is not None:
            self.watcher.stop()
        if self.wakeups is not None:
            self.wakeups.close()
        if self.placement is not None:
            self.placement.store.close()
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
    """Everything the backend needs, over ``settings.data_dir`` (created 0700 if absent)."""
    if settings.multi_node:
        require(MULTI_NODE)  # psycopg and redis, imported below only in this mode
    data_dir = settings.data_dir.resolve()
    secure_folder(data_dir)
    synchronous = settings.sqlite_synchronous
    account_store = open_account_store(
        data_dir, database_url=settings.database_url, synchronous=synchronous
    )
    placement = None
    if settings.multi_node:
        from backend.storage.placement import PlacementStore

        placement = Placement(PlacementStore(settings.database_url), settings.node)
        placement.start(f"http://{settings.host}:{settings.port}")
    hasher = PasswordHasher(
        time_cost=settings.argon2_time_cost, memory_cost=settings.argon2_memory_cost
    )
    disk = DiskFloor(data_dir, settings.min_free_disk_mb * MIB)
    gate = HashGate(
        settings.hash_concurrency,
        queue=settings.hash_queue,
        per_address=settings.hash_per_address,
    )
    policy = AccountPolicy(
        registration=settings.registration,
        register_rate=settings.register_rate_limit,
        token_idle=settings.token_idle_timeout,
    )
    accounts = Accounts(account_store, hasher, gate=gate, disk=disk, policy=policy)
    notifier = Notifier(max_waiters=settings.waiter_slots, per_owner=settings.max_waits_per_user)
    conversations = ConversationStore(
        data_dir,
        max_open=settings.max_open_conversations,
        synchronous=synchronous,
        guard=placement.check if placement is not None else None,
    )
    quotas = Quotas(
        send_rate=settings.send_rate_limit,
        new_conversation_rate=settings.new_conversation_rate_limit,
    )
    chat = Chat(
        conversations, accounts, notifier, max_wait=settings.max_wait, quotas=quotas, disk=disk
    )
    services = Services(
        settings=settings,
        conversations=conversations,
        account_store=account_store,
        accounts=accounts,
        notifier=notifier,
        chat=chat,
        edits=MessageEdits(conversations, accounts, notifier, chat.sends),
        files=Files(
            chat,
            conversations,
            accounts,
            FileLimits(
                max_file_bytes=settings.max_file_bytes,
                pair_files_quota=settings.pair_files_quota,
                user_files_quota=settings.user_files_quota,
            ),
            disk,
        ),
        search=Search(conversations, accounts),
        typing=Typing(accounts, notifier, ttl=settings.typing_seconds),
        preferences=Preferences(account_store, notifier),
        ssh_identity=SshIdentity(accounts, notifier, data_dir, settings.door_secret),
        lifecycle=AccountLifecycle(accounts, notifier),
        login_throttle=LoginThrottle(settings.login_rate_limit),
        placement=placement,
    )
    watch_interval = settings.watch_interval
    if placement is None and settings.workers == 1 and watch_interval > 0:
        # One worker: its own sends wake its waiters directly; what another process
        # writes (an operator command) may take a quarter second. Polling every 25 ms
        # was a third of an idle server's CPU (docs/performance.md, "(g)").
        watch_interval = max(watch_interval, ONE_WORKER_WATCH_INTERVAL)
    if placement is not None and watch_interval > 0:
        services.wakeups = _connect_nodes(settings, notifier, placement)
        # Sends reach this node through Redis; the watcher only notices other nodes'
        # account changes (a deleted user, a new password), which may take this long.
        watch_interval = max(watch_interval, MULTI_NODE_WATCH_INTERVAL)
    if watch_interval > 0:
        services.watcher = FeedWatcher(
            account_store,
            notifier,
            watch_interval,
            on_accounts_changed=partial(_accounts_changed, accounts, notifier),
            wake_feed=placement is None,
        ).start()
    return services


def _accounts_changed(accounts: Accounts, notifier: Notifier) -> None:
    """Another process deleted an account or revoked a token: look names up again, and
    have every open event stream check its token."""
    accounts.forget_cached()
    notifier.recheck_streams()


ONE_WORKER_WATCH_INTERVAL = 0.25
"""Seconds between the watcher's checks when this process is the only worker."""
MULTI_NODE_WATCH_INTERVAL = 0.5
"""Seconds between the watcher's checks of PostgreSQL in multi-node mode."""


def _connect_nodes(settings: Settings, notifier: Notifier, placement: Placement) -> RedisWakeups:
    """Wake-ups to and from the other nodes, and the placement map's invalidations."""
    from backend.wakeups.pubsub import RedisWakeups

    wakeups = RedisWakeups(settings.redis_url, notifier, settings.node)

    def placement_changed(payload: str) -> None:
        try:
            pair = json.loads(payload).get("pair")
        except (ValueError, AttributeError):
            pair = None
        placement.forget(pair if isinstance(pair, str) else None)

    wakeups.subscribe(PLACEMENT_CHANNEL, placement_changed, resync=placement.forget)
    return wakeups.start()
