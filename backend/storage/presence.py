"""Typing signals and the privacy switches that govern them and read receipts.

A typing signal is ``typing_until`` (milliseconds) on the recipient's contact row: kept
in the accounts database and not in the pair file so every worker sees it, ignored once
past, ended by the typer's next message (``feed._RECORD_MESSAGE``). The switches are
``users.read_receipts`` and ``users.typing``; what an owner then sees of a peer is
decided in the feed's queries (``backend/storage/feed.py``: ``_PEER_READ``,
``_TYPING``). A signal or a change of the receipts switch moves feeds, so it takes the
feed counter inside its own transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from backend.storage.accounts_db import AccountsTable
from backend.storage.feed import next_seq

if TYPE_CHECKING:
    from backend.storage.sql import Connection


@dataclass(frozen=True)
class Privacy:
    """A user's settings (``POST /settings``): both on unless turned off."""

    read_receipts: bool = True
    typing: bool = True


class PresenceStore(AccountsTable):
    """Typing signals and privacy settings."""

    def signal_typing(
        self, typer: str, recipient: str, now_ms: int, until_ms: int, gap_ms: int
    ) -> bool:
        """The typer is typing to the recipient until ``until_ms``: True when recorded.

        Only into an accepted conversation (a friend, or one the recipient wrote
        in), not blocked or hidden, when both allow typing, and at most once per
        ``gap_ms``: nothing is written otherwise.
        """

        def work(conn: Connection) -> bool:
            row = conn.execute(
                "SELECT 1 FROM contacts c WHERE c.owner = :recipient AND c.peer = :typer "
                "AND c.blocked = 0 AND c.hidden = 0 AND (c.added <> 0 OR c.accepted <> 0) "
                "AND coalesce(c.typing_until, 0) <= :until - :gap "
                "AND (SELECT typing FROM users WHERE username = :typer) <> 0 "
                "AND (SELECT typing FROM users WHERE username = :recipient) <> 0",
                {"recipient": recipient, "typer": typer, "until": until_ms, "gap": gap_ms},
            ).fetchone()
            if row is None:
                return False
            conn.execute(
                "UPDATE contacts SET typing_until = ?, seq = ? WHERE owner = ? AND peer = ?",
                (until_ms, next_seq(conn), recipient, typer),
            )
            return True

        return self._write(work)

    def privacy(self, username: str) -> Privacy:
        row = self._read(
            lambda conn: conn.execute(
                "SELECT read_receipts, typing FROM users WHERE username = ?", (username,)
            ).fetchone()
        )
        return Privacy() if row is None else Privacy(bool(row[0]), bool(row[1]))

    def set_privacy(
        self, username: str, read_receipts: bool | None, typing: bool | None
    ) -> tuple[Privacy, list[str]]:
        """Change some settings; returns them all and whose feeds heard of it.

        Turning receipts on or off changes what both sides of each of the user's
        conversations see, so all those rows (the user's and their peers') move.
        """

        def work(conn: Connection) -> tuple[Privacy, list[str]]:
            row = conn.execute(
                "SELECT read_receipts, typing FROM users WHERE username = ?", (username,)
            ).fetchone()
            before = Privacy() if row is None else Privacy(bool(row[0]), bool(row[1]))
            after = Privacy(
                before.read_receipts if read_receipts is None else read_receipts,
                before.typing if typing is None else typing,
            )
            if after == before:
                return after, []
            conn.execute(
                "UPDATE users SET read_receipts = ?, typing = ? WHERE username = ?",
                (int(after.read_receipts), int(after.typing), username),
            )
            if after.read_receipts == before.read_receipts:
                return after, []
            moved = conn.execute(
                "UPDATE contacts SET seq = ? WHERE owner = ? OR peer = ? RETURNING owner",
                (next_seq(conn), username, username),
            ).fetchall()
            return after, sorted({owner for (owner,) in moved})

        return self._write(work)
