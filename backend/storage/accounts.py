"""The accounts database, behind one facade: ``AccountStore``.

All of it lives in one file, ``_accounts.sqlite3`` in the data folder: a name no
pair can map to (pair files are ``<name>_<name>.db`` and names never start with
``_``). Plain SQL only; hashing and policy live in ``backend.services.accounts``.

Each concern is its own store, all on one connection helper
(``backend/storage/accounts_db.py``: the same connection, the same transactions):

- ``accounts_users.py``: users, passwords, display names, deletion (``UserStore``)
- ``tokens.py``: sessions by token hash, revocation (``TokenStore``)
- ``invites.py``: invite codes (``InviteStore``)
- ``feed.py``: the contact rows (friendships, requests, each pair's newest message),
  the change feed and its counter, what an owner may see of a peer (``FeedStore``)
- ``markers.py``: read markers (``MarkerStore``)
- ``presence.py``: typing signals and privacy settings (``PresenceStore``)
- ``door_keys.py``: the SSH door's keys, tickets and link codes (``DoorKeyStore``)

``AccountStore`` builds them and keeps the methods the services call, each handed to
the store that owns it (the stores are also its attributes: ``store.feed``, …).

Version 2 adds token idle times, account deletion (a deleted account keeps its
row as a tombstone, so its name is never handed to someone else, who would then
inherit its conversation files), display-name keys, invites, the newest
message on the contact rows, and ``meta`` (a counter other workers watch to forget cached accounts).

Version 3 adds what the conversation features need, still on the contact rows so
the feed stays one range scan: the pair's revision, the peer's read marker mirrored
onto my row (read receipts), when the peer's typing signal ends, whether I accepted
the conversation (otherwise a stranger's conversation is a *request*), the newest
message's revision, edit, deletion and reply, and each user's privacy settings
(``users.read_receipts``, ``users.typing``).

Version 4 adds the SSH door's identities (``backend/storage/door_keys.py``). Version 6
adds script tokens (``tokens.py``: an id, a name, scopes, an expiry). Version 8
keeps the newest message's file and reactions on the contact rows (``feed.py``). The
versions themselves are ``backend/storage/accounts_schema.py``.

In multi-node mode the same tables live in PostgreSQL, shared by every node
(``open_account_store(…, database_url=…)``: ``PostgresAccountStore``; its schema
is ``backend/storage/accounts_pg_schema.py``). The statements are the same
for both engines: SQLite's dialect kept to what PostgreSQL also runs (flags
compared with 0, ``_greater`` for two-argument ``max()``, an upsert's own columns
named ``contacts.x``), parameters rewritten by ``backend/storage/sql.py``; every
feed write takes the counter first, whose row lock orders them on PostgreSQL as
SQLite's write lock does.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from backend.storage.accounts_db import PgAccountsDb, SqliteAccountsDb
from backend.storage.accounts_schema import ACCOUNTS_FILE, MIGRATIONS
from backend.storage.accounts_users import User, UserStore
from backend.storage.door_keys import DoorKeyStore, KeyRecord, LinkResult, RemoveResult
from backend.storage.feed import Contact, FeedStore, LastMessage, Listed, PgFeedStore
from backend.storage.invites import InviteStore
from backend.storage.markers import MarkerStore
from backend.storage.presence import PresenceStore, Privacy
from backend.storage.tokens import ScriptToken, Token, TokenStore

__all__ = [
    "ACCOUNTS_FILE",
    "MIGRATIONS",
    "AccountStore",
    "Contact",
    "LastMessage",
    "Listed",
    "Privacy",
    "ScriptToken",
    "Token",
    "User",
    "open_account_store",
]


class AccountStore:
    """The accounts stores on one connection to the accounts file, serialised by a lock."""

    def __init__(self, data_dir: Path, *, synchronous: str = "NORMAL") -> None:
        self.path = Path(data_dir) / ACCOUNTS_FILE
        self._db: SqliteAccountsDb | PgAccountsDb = SqliteAccountsDb(
            self.path, synchronous=synchronous
        )
        self._stores(FeedStore(self._db))

    def _stores(self, feed: FeedStore) -> None:
        db = self._db
        self.users = UserStore(db)
        self.tokens = TokenStore(db)
        self.invites = InviteStore(db)
        self.feed = feed
        self.markers = MarkerStore(db)
        self.presence = PresenceStore(db)
        self.door_keys = DoorKeyStore(db)

    def close(self) -> None:
        self._db.close()

    def data_version(self, *, wait: bool = True) -> int | None:
        """Moves when the accounts change (``SqliteAccountsDb.data_version``)."""
        return self._db.data_version(wait=wait)

    def backup_to(self, dest: Path) -> None:
        self._db.backup_to(dest)

    # -- users (accounts_users.py) ----------------------------------------------------
    def add_user(
        self,
        username: str,
        display_name: str | None,
        password_hash: str,
        now: int,
        *,
        invite_hash: str | None = None,
    ) -> bool:
        return self.users.add_user(
            username, display_name, password_hash, now, invite_hash=invite_hash
        )

    def user(self, username: str) -> User | None:
        return self.users.user(username)

    def some_usernames(self, limit: int) -> list[str]:
        """Up to ``limit`` usernames, deleted accounts too (what an operator command
        checks before it writes demo rows)."""
        return self._db.read(
            lambda conn: [
                row[0]
                for row in conn.execute(
                    "SELECT username FROM users ORDER BY username LIMIT ?", (limit,)
                ).fetchall()
            ]
        )

    def set_password_hash(self, username: str, password_hash: str) -> None:
        self.users.set_password_hash(username, password_hash)

    def charge_files(self, username: str, size: int, quota: int) -> bool:
        return self.users.charge_files(username, size, quota)

    def refund_files(self, username: str, size: int) -> None:
        self.users.refund_files(username, size)

    def files_bytes(self, username: str) -> int:
        return self.users.files_bytes(username)

    def usernames(self) -> set[str]:
        return self.users.usernames()

    def set_files_bytes(self, tallies: Mapping[str, int]) -> dict[str, tuple[int, int]]:
        return self.users.set_files_bytes(tallies)

    def change_password(self, username: str, password_hash: str, keep_token: str | None) -> int:
        return self.users.change_password(username, password_hash, keep_token)

    def delete_user(self, username: str, now: int) -> list[str]:
        return self.users.delete_user(username, now)

    def account_epoch(self) -> int:
        return self.users.account_epoch()

    # -- tokens (tokens.py) and invites (invites.py) -----------------------------------
    def add_token(
        self, token_hash: str, username: str, now: int, via_key: str | None = None
    ) -> None:
        self.tokens.add_token(token_hash, username, now, via_key)

    def token(self, token_hash: str) -> Token | None:
        return self.tokens.token(token_hash)

    def add_script_token(
        self,
        token_hash: str,
        token_id: str,
        username: str,
        name: str,
        scopes: str,
        now: int,
        expires_at: int | None,
        limit: int,
    ) -> bool:
        return self.tokens.add_script_token(
            token_hash, token_id, username, name, scopes, now, expires_at, limit
        )

    def script_tokens(self, username: str) -> list[ScriptToken]:
        return self.tokens.script_tokens(username)

    def revoke_script_token(self, username: str, token_id: str) -> bool:
        return self.tokens.revoke_script_token(username, token_id)

    def touch_token(self, token_hash: str, now: int) -> None:
        self.tokens.touch_token(token_hash, now)

    def delete_token(self, token_hash: str) -> None:
        self.tokens.delete_token(token_hash)

    def delete_tokens(self, username: str) -> int:
        return self.tokens.delete_tokens(username)

    def add_invite(self, code_hash: str, now: int, expires_at: int | None) -> None:
        self.invites.add_invite(code_hash, now, expires_at)

    # -- contacts and the feed (feed.py) -----------------------------------------------
    def current_seq(self) -> int:
        return self.feed.current_seq()

    def set_flags(self, owner: str, peer: str, **flags: int) -> None:
        self.feed.set_flags(owner, peer, **flags)

    def contact(self, owner: str, peer: str) -> Contact | None:
        return self.feed.contact(owner, peer)

    def record_message(self, author: str, recipient: str, last: LastMessage) -> None:
        self.feed.record_message(author, recipient, last)

    def repair_feed(self, author: str, recipient: str, last: LastMessage, unread: int) -> None:
        self.feed.repair_feed(author, recipient, last, unread)

    def record_revision(
        self, author: str, peer: str, changed: LastMessage, peer_unread: int | None = None
    ) -> None:
        self.feed.record_revision(author, peer, changed, peer_unread)

    def set_last_message(self, a: str, b: str, last: LastMessage) -> None:
        self.feed.set_last_message(a, b, last)

    def keep_last_message(self, a: str, b: str, last_id: int) -> None:
        self.feed.keep_last_message(a, b, last_id)

    def forget_pair(self, a: str, b: str) -> None:
        self.feed.forget_pair(a, b)

    def contacts(self, owner: str, since: int = 0, now_ms: int = 0) -> tuple[int, list[Contact]]:
        return self.feed.contacts(owner, since, now_ms)

    def friend_list(self, owner: str, now_ms: int = 0) -> tuple[list[Listed], list[str]]:
        return self.feed.friend_list(owner, now_ms)

    def changed_pairs(self, since: int) -> tuple[int, list[tuple[str, str]]]:
        return self.feed.changed_pairs(since)

    def feed_rows(self) -> list[tuple[str, str, int, int]]:
        return self.feed.feed_rows()

    # -- read markers (markers.py), typing and privacy (presence.py) --------------------
    def set_read_marker(self, owner: str, peer: str, marker: int, unread: int) -> tuple[bool, bool]:
        return self.markers.set_read_marker(owner, peer, marker, unread)

    def signal_typing(
        self, typer: str, recipient: str, now_ms: int, until_ms: int, gap_ms: int
    ) -> bool:
        return self.presence.signal_typing(typer, recipient, now_ms, until_ms, gap_ms)

    def privacy(self, username: str) -> Privacy:
        return self.presence.privacy(username)

    def set_privacy(
        self, username: str, read_receipts: bool | None, typing: bool | None
    ) -> tuple[Privacy, list[str]]:
        return self.presence.set_privacy(username, read_receipts, typing)

    # -- the SSH door (door_keys.py) ----------------------------------------------------
    def key_owner(self, fingerprint: str) -> str | None:
        return self.door_keys.key_owner(fingerprint)

    def keys(self, username: str) -> list[KeyRecord]:
        return self.door_keys.keys(username)

    def remove_key(self, username: str, fingerprint: str) -> RemoveResult:
        return self.door_keys.remove_key(username, fingerprint)

    def add_ticket(self, ticket_hash: str, key: KeyRecord, now: int, expires_at: int) -> None:
        self.door_keys.add_ticket(ticket_hash, key, now, expires_at)

    def ticket(self, ticket_hash: str, now: int) -> KeyRecord | None:
        return self.door_keys.ticket(ticket_hash, now)

    def claim(
        self,
        ticket_hash: str,
        username: str,
        display_name: str | None,
        now: int,
        *,
        invite_hash: str | None = None,
    ) -> KeyRecord | None:
        return self.door_keys.claim(
            ticket_hash, username, display_name, now, invite_hash=invite_hash
        )

    def add_link_code(self, code_hash: str, username: str, expires_at: int) -> None:
        self.door_keys.add_link_code(code_hash, username, expires_at)

    def link(
        self, ticket_hash: str, code_hash: str, now: int, max_tries: int
    ) -> tuple[LinkResult, str | None, KeyRecord | None]:
        return self.door_keys.link(ticket_hash, code_hash, now, max_tries)


class PostgresAccountStore(AccountStore):
    """The same stores on a PostgreSQL database that every node shares (multi-node mode).

    The statements are the stores'; only the way they run differs
    (``accounts_db.PgAccountsDb`` over ``backend/storage/sql.py``), and a send's feed
    record is one statement (``feed.PgFeedStore``). ``path`` is where the single-node
    file would be: nothing is written there.
    """

    def __init__(self, data_dir: Path, database_url: str, *, pool_size: int = 0) -> None:
        import psycopg

        from backend.storage import sql
        from backend.storage.accounts_pg_schema import ensure_schema

        self.path = Path(data_dir) / ACCOUNTS_FILE
        pg = sql.PgDatabase(database_url, size=pool_size or sql.POOL_SIZE)
        try:
            with pg.connect() as conn:
                ensure_schema(conn)
        except psycopg.Error as exc:
            pg.close()
            raise sql.pg_unavailable(exc) from exc
        db = PgAccountsDb(pg)
        self._db = db
        self._stores(PgFeedStore(db))


def open_account_store(
    data_dir: Path, *, database_url: str = "", synchronous: str = "NORMAL"
) -> AccountStore:
    """The accounts store: on PostgreSQL when ``database_url`` is set (multi-node mode),
    else the SQLite file in ``data_dir``."""
    if database_url:
        return PostgresAccountStore(data_dir, database_url)
    return AccountStore(data_dir, synchronous=synchronous)
