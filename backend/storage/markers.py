"""Read markers: how far an owner has read a conversation, mirrored onto the peer's row.

The marker lives on the owner's contact row (``read_marker``, with the recomputed
``unread``) and as ``peer_read`` on the peer's row, which is what read receipts show
(``backend/storage/feed.py`` decides who may see it). Both rows change in one
transaction that takes the feed counter first, like every feed write.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from backend.storage.accounts_db import AccountsTable
from backend.storage.feed import next_seq

if TYPE_CHECKING:
    from backend.storage.sql import Connection


class MarkerStore(AccountsTable):
    """Read markers on both rows of a pair."""

    def set_read_marker(self, owner: str, peer: str, marker: int, unread: int) -> tuple[bool, bool]:
        """Owner's marker and unread count; the marker is mirrored onto peer's row.

        Each feed hears of it only when something it shows moved: the owner's when
        the marker or the unread count changed, the peer's when the marker moved and
        both have read receipts on (a marker sent again changes nothing and wakes
        nobody: a bot that marks read after every wake-up would otherwise spin).
        Returns (the owner's feed moved, the peer's feed moved).
        """

        def work(conn: Connection) -> tuple[bool, bool]:
            seq = next_seq(conn)
            mine = conn.execute(
                "INSERT INTO contacts (owner, peer, read_marker, unread, seq) "
                "VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (owner, peer) DO UPDATE SET read_marker = excluded.read_marker, "
                "unread = excluded.unread, seq = CASE "
                "WHEN contacts.read_marker <> excluded.read_marker "
                "OR contacts.unread <> excluded.unread "
                "THEN excluded.seq ELSE contacts.seq END RETURNING seq",
                (owner, peer, marker, unread, seq),
            ).fetchone()
            told = conn.execute(
                "UPDATE contacts SET peer_read = :marker, seq = CASE WHEN peer_read <> :marker "
                "AND coalesce((SELECT read_receipts FROM users WHERE username = :owner), 1) <> 0 "
                "AND coalesce((SELECT read_receipts FROM users WHERE username = :peer), 1) <> 0 "
                "THEN :seq ELSE seq END WHERE owner = :peer AND peer = :owner RETURNING seq",
                {"owner": owner, "peer": peer, "marker": marker, "seq": seq},
            ).fetchone()
            return mine[0] == seq, told is not None and told[0] == seq

        return self._write(work)
