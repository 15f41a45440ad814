"""Invites: the SHA-256 of each invite code, when it was made and when it expires.

An invite is used up inside the registration that uses it (``door_keys.insert_user``),
so two registrations can never share one.
"""

from __future__ import annotations

from backend.storage.accounts_db import AccountsTable


class InviteStore(AccountsTable):
    """Invite codes by their hash."""

    def add_invite(self, code_hash: str, now: int, expires_at: int | None) -> None:
        self._write(
            lambda conn: conn.execute(
                "INSERT INTO invites (code_hash, created_at, expires_at) VALUES (?, ?, ?)",
                (code_hash, now, expires_at),
            )
        )
