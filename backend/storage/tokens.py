"""Sessions: the SHA-256 of each bearer token, its owner, when it was last used.

Hashing and the idle rules are ``backend/services/accounts.py``'s. Revocations that
are part of a larger change run inside that change's transaction instead: a password
change (``accounts_users``), an account's deletion (``accounts_users``), an SSH key's
removal (``door_keys``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from backend.storage.accounts_db import ACCOUNTS_CHANGED, AccountsTable

if TYPE_CHECKING:
    from backend.storage.sql import Connection


@dataclass(frozen=True)
class Token:
    username: str
    created_at: int
    last_used: int


class TokenStore(AccountsTable):
    """Bearer tokens by their hash."""

    def add_token(
        self, token_hash: str, username: str, now: int, via_key: str | None = None
    ) -> None:
        """A new token; ``via_key``: the SSH key it was issued through (the door)."""
        self._write(
            lambda conn: conn.execute(
                "INSERT INTO tokens (token_hash, username, created_at, last_used, via_key) "
                "VALUES (?, ?, ?, ?, ?)",
                (token_hash, username, now, now, via_key),
            )
        )

    def token(self, token_hash: str) -> Token | None:
        row = self._read(
            lambda conn: conn.execute(
                "SELECT username, created_at, coalesce(last_used, created_at) FROM tokens "
                "WHERE token_hash = ?",
                (token_hash,),
            ).fetchone()
        )
        return None if row is None else Token(row[0], row[1], row[2])

    def touch_token(self, token_hash: str, now: int) -> None:
        self._write(
            lambda conn: conn.execute(
                "UPDATE tokens SET last_used = ? WHERE token_hash = ?", (now, token_hash)
            )
        )

    def delete_token(self, token_hash: str) -> None:
        def work(conn: Connection) -> None:
            conn.execute("DELETE FROM tokens WHERE token_hash = ?", (token_hash,))
            conn.execute(ACCOUNTS_CHANGED)

        self._write(work)

    def delete_tokens(self, username: str) -> int:
        """Sign out everywhere: every token of the user. Returns how many."""

        def work(conn: Connection) -> int:
            count: int = conn.execute("DELETE FROM tokens WHERE username = ?", (username,)).rowcount
            conn.execute(ACCOUNTS_CHANGED)
            return count

        return self._write(work)
