"""Users: accounts, their passwords and display names, deletion as a tombstone.

A deleted account keeps its row as a tombstone, so its name is never handed to
someone else, who would then inherit its conversation files. ``meta.account_epoch``
moves with each deletion: other workers watch it to forget the names they cached.
A new account row is ``door_keys.insert_user`` (registration's rules, shared with the
SSH door's claim).

Two writes here span other concerns and stay one transaction each: a password
change revokes the user's other tokens (no moment where the old password's sessions
outlive the new one), and a deletion removes tokens, SSH keys, link codes and contact
rows and moves the peers' feeds (no half-deleted account; the feed counter first, like
every feed write).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from backend.storage.accounts_db import ACCOUNTS_CHANGED, AccountsTable
from backend.storage.door_keys import insert_user
from backend.storage.feed import next_seq

if TYPE_CHECKING:
    from backend.storage.sql import Connection


@dataclass(frozen=True)
class User:
    username: str
    display_name: str | None
    password_hash: str
    deleted: bool = False


class UserStore(AccountsTable):
    """User rows: names, password hashes, display names, tombstones."""

    def add_user(
        self,
        username: str,
        display_name: str | None,
        password_hash: str,
        now: int,
        *,
        invite_hash: str | None = None,
    ) -> bool:
        """False when the name is taken (deleted accounts keep theirs).

        In the same transaction: a username that reads like another user's name is
        ``UsernameTaken`` (saying so), a display name that does ``DisplayNameTaken``;
        with ``invite_hash``, the invite is used up (``InvalidInvite`` when it is
        unknown, used or expired), so two registrations can never share one invite.
        """

        def work(conn: Connection) -> bool:
            self._serialize_accounts(conn)
            if conn.execute("SELECT 1 FROM users WHERE username = ?", (username,)).fetchone():
                return False
            insert_user(conn, username, display_name, password_hash, now, invite_hash)
            return True

        return self._write(work)

    def user(self, username: str) -> User | None:
        """The account, deleted or not (a deleted one has ``deleted`` and no password)."""
        row = self._read(
            lambda conn: conn.execute(
                "SELECT username, display_name, password_hash, deleted_at IS NOT NULL "
                "FROM users WHERE username = ?",
                (username,),
            ).fetchone()
        )
        return None if row is None else User(row[0], row[1], row[2], bool(row[3]))

    def charge_files(self, username: str, size: int, quota: int) -> bool:
        """Count ``size`` more bytes of files sent by ``username``, unless that passes
        ``quota`` (False; nothing counted). One statement: two uploads at once cannot
        both slip under the quota."""
        charged = self._write(
            lambda conn: (
                conn.execute(
                    "UPDATE users SET files_bytes = files_bytes + ? "
                    "WHERE username = ? AND files_bytes + ? <= ?",
                    (size, username, size, quota),
                ).rowcount
            )
        )
        return bool(charged)

    def refund_files(self, username: str, size: int) -> None:
        """``size`` bytes of ``username``'s files are gone (deleted, never stored)."""
        self._write(
            lambda conn: conn.execute(
                "UPDATE users SET files_bytes = CASE WHEN files_bytes > ? "
                "THEN files_bytes - ? ELSE 0 END WHERE username = ?",
                (size, size, username),
            )
        )

    def files_bytes(self, username: str) -> int:
        """Bytes of files ``username`` has sent and not deleted."""
        row = self._read(
            lambda conn: conn.execute(
                "SELECT files_bytes FROM users WHERE username = ?", (username,)
            ).fetchone()
        )
        return 0 if row is None else int(row[0])

    def usernames(self) -> set[str]:
        """Every account's name, deleted ones too (a tombstone keeps its files tally)."""
        return self._read(
            lambda conn: {row[0] for row in conn.execute("SELECT username FROM users").fetchall()}
        )

    def set_files_bytes(self, tallies: Mapping[str, int]) -> dict[str, tuple[int, int]]:
        """Set every account's files tally to its entry in ``tallies`` (0 when it has
        none), in one transaction (``pairchat-server recount-files``); the ones that
        changed, as (was, now)."""

        def work(conn: Connection) -> dict[str, tuple[int, int]]:
            changed: dict[str, tuple[int, int]] = {}
            rows = conn.execute("SELECT username, files_bytes FROM users").fetchall()
            for username, was in rows:
                now = int(tallies.get(username, 0))
                if int(was) != now:
                    conn.execute(
                        "UPDATE users SET files_bytes = ? WHERE username = ?", (now, username)
                    )
                    changed[username] = (int(was), now)
            return changed

        return self._write(work)

    def set_password_hash(self, username: str, password_hash: str) -> None:
        self._write(
            lambda conn: conn.execute(
                "UPDATE users SET password_hash = ? WHERE username = ?", (password_hash, username)
            )
        )

    def change_password(self, username: str, password_hash: str, keep_token: str | None) -> int:
        """New hash; every token of the user but ``keep_token`` revoked. Returns how many."""

        def work(conn: Connection) -> int:
            conn.execute(
                "UPDATE users SET password_hash = ? WHERE username = ?", (password_hash, username)
            )
            gone = conn.execute(
                "DELETE FROM tokens WHERE username = ? AND token_hash IS DISTINCT FROM ?",
                (username, keep_token),
            )
            conn.execute(ACCOUNTS_CHANGED)
            return gone.rowcount

        return self._write(work)

    def delete_user(self, username: str, now: int) -> list[str]:
        """Tombstone the account: no password, tokens, name or contacts of its own.

        The peers keep their side (their contact rows and the pair files) and
        hear about it in their feed; the name stays taken for good. Returns the peers.
        """

        def work(conn: Connection) -> list[str]:
            seq = next_seq(conn)  # first: every feed write takes the counter first
            conn.execute(
                "UPDATE users SET deleted_at = ?, password_hash = '', display_name = NULL, "
                "display_key = NULL, read_receipts = 1, typing = 1 WHERE username = ?",
                (now, username),
            )
            conn.execute("DELETE FROM tokens WHERE username = ?", (username,))
            conn.execute("DELETE FROM ssh_keys WHERE username = ?", (username,))
            conn.execute("DELETE FROM link_codes WHERE username = ?", (username,))
            conn.execute("DELETE FROM contacts WHERE owner = ?", (username,))
            peers = conn.execute(
                "UPDATE contacts SET seq = ? WHERE peer = ? RETURNING owner", (seq, username)
            ).fetchall()
            conn.execute(ACCOUNTS_CHANGED)
            return [row[0] for row in peers]

        return self._write(work)

    def account_epoch(self) -> int:
        """Moves when an account is deleted or a token revoked (``ACCOUNTS_CHANGED``)."""
        return self._read(
            lambda conn: int(
                conn.execute("SELECT value FROM meta WHERE key = 'account_epoch'").fetchone()[0]
            )
        )
