"""The placement map of multi-node mode: which node owns each pair's file (PostgreSQL).

Two tables, created on first use (under an advisory lock, so nodes starting
together do not race):

- ``nodes``: every node that ever started (``name``, its ``url``) and whether
  it is *fenced*: a fenced node serves no conversation, even if it comes back
  (failover fences the dead owner before its pairs move; ``unfence`` is explicit);
- ``placement``: ``pair`` (the file's stem, ``alice_bob``) → ``node``, plus
  ``moving`` while one pair is being moved (its owner refuses it meanwhile).

A pair is placed the first time it is written: the node the router sent it to
claims it with one ``INSERT … ON CONFLICT DO NOTHING`` and then reads who won.
Rows change only through the operator commands (``pairchat-server placement``):
nothing here ever re-hashes a pair. Plain SQL only; the policy is
``backend.services.placement``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from backend.storage.sql import PgConnection, PgDatabase

T = TypeVar("T")
SCHEMA_LOCK = 0x70616972  # pg_advisory_xact_lock key while creating the tables ("pair")
SCHEMA = (
    """CREATE TABLE IF NOT EXISTS nodes (
        name TEXT PRIMARY KEY,
        url TEXT NOT NULL DEFAULT '',
        fenced BOOLEAN NOT NULL DEFAULT FALSE,
        started_at BIGINT NOT NULL DEFAULT 0
    )""",
    """CREATE TABLE IF NOT EXISTS placement (
        pair TEXT PRIMARY KEY,
        node TEXT NOT NULL,
        moving BOOLEAN NOT NULL DEFAULT FALSE,
        placed_at BIGINT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS placement_node ON placement (node)",
)


@dataclass(frozen=True)
class Owner:
    node: str
    moving: bool


@dataclass(frozen=True)
class NodeRow:
    name: str
    url: str
    fenced: bool
    pairs: int


class PlacementStore:
    """The two tables, on the accounts store's kind of connection pool
    (``backend/storage/sql.py``: reconnects, ``StorageUnavailable`` when unreachable)."""

    def __init__(self, database_url: str, *, pool_size: int = 4) -> None:
        self._db = PgDatabase(database_url, size=pool_size)
        self._db.write(self._create_schema)

    def _run(self, work: Callable[[PgConnection], T]) -> T:
        """One statement, its own transaction."""
        return self._db.read(work)

    def close(self) -> None:
        self._db.close()

    @staticmethod
    def _create_schema(conn: PgConnection) -> None:
        conn.execute("SELECT pg_advisory_xact_lock(?)", (SCHEMA_LOCK,))
        for statement in SCHEMA:
            conn.execute(statement)

    # -- nodes ----------------------------------------------------------------------------
    def register_node(self, name: str, url: str) -> bool:
        """Record a starting node (its URL is updated); True when it is fenced."""
        row = self._run(
            lambda conn: conn.execute(
                "INSERT INTO nodes (name, url, started_at) VALUES (?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET url = EXCLUDED.url, "
                "started_at = EXCLUDED.started_at RETURNING fenced",
                (name, url, int(time.time())),
            ).fetchone()
        )
        return bool(row and row[0])

    def fenced(self, name: str) -> bool:
        row = self._run(
            lambda conn: conn.execute("SELECT fenced FROM nodes WHERE name = ?", (name,)).fetchone()
        )
        return bool(row and row[0])

    def set_fenced(self, name: str, fenced: bool) -> None:
        """Fence or unfence a node (recorded even if it never started)."""
        self._run(
            lambda conn: conn.execute(
                "INSERT INTO nodes (name, fenced) VALUES (?, ?) ON CONFLICT (name) DO UPDATE "
                "SET fenced = EXCLUDED.fenced",
                (name, fenced),
            )
        )

    def nodes(self) -> list[NodeRow]:
        rows = self._run(
            lambda conn: conn.execute(
                "SELECT n.name, n.url, n.fenced, count(p.pair) FROM nodes n "
                "LEFT JOIN placement p ON p.node = n.name GROUP BY n.name ORDER BY n.name"
            ).fetchall()
        )
        return [NodeRow(name, url, bool(fenced), int(count)) for name, url, fenced, count in rows]

    # -- pairs ----------------------------------------------------------------------------
    def owner(self, pair: str) -> Owner | None:
        row = self._run(
            lambda conn: conn.execute(
                "SELECT node, moving FROM placement WHERE pair = ?", (pair,)
            ).fetchone()
        )
        return Owner(row[0], bool(row[1])) if row else None

    def claim(self, pair: str, node: str) -> Owner:
        """Place an unplaced pair on ``node``; whoever placed it first keeps it."""

        def work(conn: PgConnection) -> Owner:
            conn.execute(
                "INSERT INTO placement (pair, node, placed_at) VALUES (?, ?, ?) "
                "ON CONFLICT (pair) DO NOTHING",
                (pair, node, int(time.time())),
            )
            row = conn.execute(
                "SELECT node, moving FROM placement WHERE pair = ?", (pair,)
            ).fetchone()
            assert row is not None
            return Owner(row[0], bool(row[1]))

        return self._run(work)

    def pairs_of(self, node: str) -> list[str]:
        rows = self._run(
            lambda conn: conn.execute(
                "SELECT pair FROM placement WHERE node = ? ORDER BY pair", (node,)
            ).fetchall()
        )
        return [row[0] for row in rows]

    def assign(self, from_node: str, to_node: str) -> int:
        """Every pair of ``from_node`` now belongs to ``to_node`` (failover); how many."""
        return self._run(
            lambda conn: (
                conn.execute(
                    "UPDATE placement SET node = ?, moving = FALSE WHERE node = ?",
                    (to_node, from_node),
                ).rowcount
            )
        )

    def set_moving(self, pair: str, moving: bool) -> Owner | None:
        row = self._run(
            lambda conn: conn.execute(
                "UPDATE placement SET moving = ? WHERE pair = ? RETURNING node, moving",
                (moving, pair),
            ).fetchone()
        )
        return Owner(row[0], bool(row[1])) if row else None

    def move(self, pair: str, to_node: str) -> None:
        """Place ``pair`` on ``to_node`` (placed or not) and end its move."""
        self._run(
            lambda conn: conn.execute(
                "INSERT INTO placement (pair, node, placed_at) VALUES (?, ?, ?) "
                "ON CONFLICT (pair) DO UPDATE SET node = EXCLUDED.node, moving = FALSE",
                (pair, to_node, int(time.time())),
            )
        )
