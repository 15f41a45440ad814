"""The SSH door's identities in the accounts file: keys, tickets and link codes.

One of the accounts stores (same connection helper and database: the SQLite file,
or PostgreSQL in multi-node mode: ``backend/storage/accounts_db.py``), behind the
``AccountStore`` facade like the others. Plain SQL only;
the rules (who may, how long, how many tries) are ``backend/services/ssh_identity.py``'s.

- ``ssh_keys``: one row per key, keyed by its fingerprint, so a key belongs to
  one account at most; a deleted account's keys are deleted with it.
- ``door_tickets``: what ``/door/session`` gives an unknown key — the SHA-256 of
  a one-time ticket, bound to that key, with its expiry and the wrong link codes
  tried with it. Used up by a claim or a link; expired ones are swept as new
  ones are made.
- ``link_codes``: the SHA-256 of a one-time code an account made to add a key;
  an account has at most one (a new one replaces it).
- ``tokens.via_key``: the key a token was issued through (removing the key
  revokes them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from backend.core.errors import DisplayNameTaken, InvalidInvite, UsernameTaken
from backend.core.names import USERNAME_SKELETON
from backend.core.usernames import display_key
from backend.storage.accounts_db import ACCOUNTS_CHANGED, AccountsTable

if TYPE_CHECKING:
    from backend.storage.sql import Connection

LinkResult = Literal["linked", "bad_ticket", "bad_code", "key_taken"]
RemoveResult = Literal["removed", "unknown", "last"]


@dataclass(frozen=True)
class KeyRecord:
    """A key as stored: its fingerprint, ``type base64`` and the comment it came with."""

    fingerprint: str
    key: str
    comment: str
    added: int = 0


class DoorKeyStore(AccountsTable):
    """The SSH door's keys, tickets and link codes."""

    # -- keys ------------------------------------------------------------------------
    def key_owner(self, fingerprint: str) -> str | None:
        """The live account this key signs in as, if any."""
        row = self._read(
            lambda conn: conn.execute(
                "SELECT k.username FROM ssh_keys k JOIN users u ON u.username = k.username "
                "WHERE k.fingerprint = ? AND u.deleted_at IS NULL",
                (fingerprint,),
            ).fetchone()
        )
        return None if row is None else str(row[0])

    def keys(self, username: str) -> list[KeyRecord]:
        rows = self._read(
            lambda conn: conn.execute(
                "SELECT fingerprint, key, comment, added FROM ssh_keys WHERE username = ? "
                "ORDER BY added, fingerprint",
                (username,),
            ).fetchall()
        )
        return [KeyRecord(*row) for row in rows]

    def remove_key(self, username: str, fingerprint: str) -> RemoveResult:
        """Remove one of the user's keys and revoke the tokens issued through it.

        ``last``: it is the only way the account can sign in (no password, no other
        key), and it stays.
        """

        def work(conn: Connection) -> RemoveResult:
            mine = conn.execute(
                "SELECT 1 FROM ssh_keys WHERE username = ? AND fingerprint = ?",
                (username, fingerprint),
            ).fetchone()
            if mine is None:
                return "unknown"
            others = conn.execute(
                "SELECT count(*) FROM ssh_keys WHERE username = ? AND fingerprint != ?",
                (username, fingerprint),
            ).fetchone()[0]
            password = conn.execute(
                "SELECT password_hash FROM users WHERE username = ?", (username,)
            ).fetchone()
            if not others and (password is None or not password[0]):
                return "last"
            conn.execute("DELETE FROM ssh_keys WHERE fingerprint = ?", (fingerprint,))
            conn.execute("DELETE FROM tokens WHERE via_key = ?", (fingerprint,))
            conn.execute(ACCOUNTS_CHANGED)
            return "removed"

        result: RemoveResult = self._write(work)
        return result

    # -- tickets ---------------------------------------------------------------------
    def add_ticket(self, ticket_hash: str, key: KeyRecord, now: int, expires_at: int) -> None:
        def work(conn: Connection) -> None:
            conn.execute("DELETE FROM door_tickets WHERE expires_at <= ?", (now,))
            conn.execute(
                "INSERT INTO door_tickets (ticket_hash, fingerprint, key, comment, expires_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (ticket_hash, key.fingerprint, key.key, key.comment, expires_at),
            )

        self._write(work)

    @staticmethod
    def _ticket(conn: Connection, ticket_hash: str, now: int) -> KeyRecord | None:
        row = conn.execute(
            "SELECT fingerprint, key, comment FROM door_tickets "
            "WHERE ticket_hash = ? AND expires_at > ?",
            (ticket_hash, now),
        ).fetchone()
        return None if row is None else KeyRecord(row[0], row[1], row[2], now)

    def ticket(self, ticket_hash: str, now: int) -> KeyRecord | None:
        """The key a valid (unused, unexpired) ticket is bound to."""
        found: KeyRecord | None = self._read(lambda conn: self._ticket(conn, ticket_hash, now))
        return found

    def claim(
        self,
        ticket_hash: str,
        username: str,
        display_name: str | None,
        now: int,
        *,
        invite_hash: str | None = None,
    ) -> KeyRecord | None:
        """A passwordless account for the ticket's key, the ticket used up: one transaction.

        None when the ticket is not valid (nothing changed); ``UsernameTaken``,
        ``DisplayNameTaken``, ``InvalidInvite`` as for a registration.
        """

        def work(conn: Connection) -> KeyRecord | None:
            self._serialize_accounts(conn)
            key = self._ticket(conn, ticket_hash, now)
            if key is None:
                return None
            if self._bound(conn, key.fingerprint):
                conn.execute("DELETE FROM door_tickets WHERE ticket_hash = ?", (ticket_hash,))
                return None  # claimed or linked by another session meanwhile
            insert_user(conn, username, display_name, "", now, invite_hash)
            conn.execute("DELETE FROM door_tickets WHERE ticket_hash = ?", (ticket_hash,))
            self._insert_key(conn, username, key, now)
            return key

        found: KeyRecord | None = self._write(work)
        return found

    # -- link codes ------------------------------------------------------------------
    def add_link_code(self, code_hash: str, username: str, expires_at: int) -> None:
        """The account's one link code (any earlier one stops working)."""

        def work(conn: Connection) -> None:
            conn.execute("DELETE FROM link_codes WHERE username = ?", (username,))
            conn.execute(
                "INSERT INTO link_codes (code_hash, username, expires_at) VALUES (?, ?, ?)",
                (code_hash, username, expires_at),
            )

        self._write(work)

    def link(
        self, ticket_hash: str, code_hash: str, now: int, max_tries: int
    ) -> tuple[LinkResult, str | None, KeyRecord | None]:
        """Add the ticket's key to the code's account, both used up: one transaction.

        A wrong code counts against the ticket (used up after ``max_tries``); that
        count is kept, so this returns its outcome rather than raising.
        """

        def work(conn: Connection) -> tuple[LinkResult, str | None, KeyRecord | None]:
            key = self._ticket(conn, ticket_hash, now)
            if key is None:
                return "bad_ticket", None, None
            row = conn.execute(
                "SELECT c.username FROM link_codes c JOIN users u ON u.username = c.username "
                "WHERE c.code_hash = ? AND c.expires_at > ? AND u.deleted_at IS NULL",
                (code_hash, now),
            ).fetchone()
            if row is None:
                conn.execute(
                    "UPDATE door_tickets SET tries = tries + 1 WHERE ticket_hash = ?",
                    (ticket_hash,),
                )
                conn.execute(
                    "DELETE FROM door_tickets WHERE ticket_hash = ? AND tries >= ?",
                    (ticket_hash, max_tries),
                )
                return "bad_code", None, None
            username = str(row[0])
            conn.execute("DELETE FROM door_tickets WHERE ticket_hash = ?", (ticket_hash,))
            if self._bound(conn, key.fingerprint):
                return "key_taken", None, None
            conn.execute("DELETE FROM link_codes WHERE code_hash = ?", (code_hash,))
            self._insert_key(conn, username, key, now)
            return "linked", username, key

        result: tuple[LinkResult, str | None, KeyRecord | None] = self._write(work)
        return result

    # -- helpers ---------------------------------------------------------------------
    @staticmethod
    def _bound(conn: Connection, fingerprint: str) -> bool:
        row = conn.execute("SELECT 1 FROM ssh_keys WHERE fingerprint = ?", (fingerprint,))
        return row.fetchone() is not None

    @staticmethod
    def _insert_key(conn: Connection, username: str, key: KeyRecord, now: int) -> None:
        conn.execute(
            "INSERT INTO ssh_keys (fingerprint, username, key, comment, added) "
            "VALUES (?, ?, ?, ?, ?)",
            (key.fingerprint, username, key.key, key.comment, now),
        )


def _username_key(column: str) -> str:
    """SQL for ``name_key`` of a username column (``USERNAME_SKELETON``: ``m`` reads
    as ``rn``, ``0`` as ``o``, ``1`` as ``l``), the same in SQLite and PostgreSQL."""
    for letter, reading in USERNAME_SKELETON:
        column = f"replace({column}, '{letter}', '{reading}')"
    return column


_READS_LIKE_A_NAME = (
    f"SELECT 1 FROM users WHERE display_key = :key OR {_username_key('username')} = :key LIMIT 1"
)
"""Another user whose display name, or username (deleted accounts keep theirs), reads
as ``key``: a new username that reads like it is refused, as a display name is."""


def insert_user(
    conn: Connection,
    username: str,
    display_name: str | None,
    password_hash: str,
    now: int,
    invite_hash: str | None,
) -> None:
    """A new account row, inside the caller's write transaction (registration's rules:
    a free username that reads like no other user's display name or username, a
    display name that reads like nobody else's, an invite used up). One's own display
    name may read like one's username: the row is not there yet."""
    if conn.execute("SELECT 1 FROM users WHERE username = ?", (username,)).fetchone():
        raise UsernameTaken(f"the username '{username}' is taken")
    if conn.execute(_READS_LIKE_A_NAME, {"key": display_key(username)}).fetchone():
        raise UsernameTaken(f"the username '{username}' reads like another user's name")
    key = None if display_name is None else display_key(display_name)
    if (
        key is not None
        and conn.execute(
            "SELECT 1 FROM users WHERE display_key = :key OR username = :key LIMIT 1",
            {"key": key},
        ).fetchone()
    ):
        raise DisplayNameTaken("that display name reads like another user's name")
    if invite_hash is not None:
        used = conn.execute(
            "UPDATE invites SET used_by = :user, used_at = :now WHERE code_hash = :code "
            "AND used_by IS NULL AND (expires_at IS NULL OR expires_at > :now)",
            {"user": username, "now": now, "code": invite_hash},
        )
        if used.rowcount != 1:
            raise InvalidInvite("the invite code is unknown, used or expired")
    conn.execute(
        "INSERT INTO users (username, display_name, password_hash, created_at, display_key) "
        "VALUES (?, ?, ?, ?, ?)",
        (username, display_name, password_hash, now, key),
    )
