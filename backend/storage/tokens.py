"""Sessions: the SHA-256 of each bearer token, its owner, when it was last used.

A *script token* (``POST /tokens``, version 6) is a row like any other plus a public
``token_id``, a ``name``, its ``scopes`` (comma-separated, e.g. ``read,send``; NULL
for a full session token) and an optional ``expires_at``. Revoking one by its id runs
``ACCOUNTS_CHANGED`` in the same transaction, as ``delete_token`` does, so every
worker's open event streams of that token check it again and end.

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
    scopes: str | None = None
    """Comma-separated scopes of a script token; None: a full session token."""
    expires_at: int | None = None


@dataclass(frozen=True)
class ScriptToken:
    """A script token as its owner may see it: never its secret."""

    token_id: str
    name: str
    scopes: str
    created_at: int
    last_used: int
    expires_at: int | None


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
        """A new script token; False (nothing added) when the user already has ``limit``."""

        def work(conn: Connection) -> bool:
            held = conn.execute(
                "SELECT count(*) FROM tokens WHERE username = ? AND scopes IS NOT NULL",
                (username,),
            ).fetchone()[0]
            if held >= limit:
                return False
            conn.execute(
                "INSERT INTO tokens (token_hash, username, created_at, last_used, token_id, "
                "name, scopes, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (token_hash, username, now, now, token_id, name, scopes, expires_at),
            )
            return True

        return self._write(work)

    def script_tokens(self, username: str) -> list[ScriptToken]:
        """The user's script tokens, oldest first."""
        rows = self._read(
            lambda conn: conn.execute(
                "SELECT token_id, name, scopes, created_at, coalesce(last_used, created_at), "
                "expires_at FROM tokens WHERE username = ? AND scopes IS NOT NULL "
                "ORDER BY created_at, token_id",
                (username,),
            ).fetchall()
        )
        return [ScriptToken(*row) for row in rows]

    def revoke_script_token(self, username: str, token_id: str) -> bool:
        """Revoke one of the user's script tokens by its id; False if there is none."""

        def work(conn: Connection) -> bool:
            count: int = conn.execute(
                "DELETE FROM tokens WHERE username = ? AND token_id = ? AND scopes IS NOT NULL",
                (username, token_id),
            ).rowcount
            if count:
                conn.execute(ACCOUNTS_CHANGED)
            return count > 0

        return self._write(work)

    def token(self, token_hash: str) -> Token | None:
        row = self._read(
            lambda conn: conn.execute(
                "SELECT username, created_at, coalesce(last_used, created_at), scopes, "
                "expires_at FROM tokens WHERE token_hash = ?",
                (token_hash,),
            ).fetchone()
        )
        return None if row is None else Token(row[0], row[1], row[2], row[3], row[4])

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
