"""The accounts store's SQL on PostgreSQL: one set of statements, two engines.

The store's statements are written once, in SQLite's dialect restricted to what
PostgreSQL also understands (``ON CONFLICT``, ``RETURNING``, ``IS DISTINCT FROM``,
``CASE`` rather than two-argument ``max()``, ``flag = 0`` rather than ``NOT flag``).
What differs is the parameter style, and ``translate`` rewrites it: ``?`` becomes
``%s`` and ``:name`` becomes ``%(name)s``, while quoted text, ``::`` casts and
comments are left alone (and a literal ``%`` is doubled, as psycopg wants).

``PgDatabase`` runs the store's work functions the way ``AccountStore`` does on
SQLite (``read``, ``write``, ``snapshot``), over a small pool of connections, so
Flask's threads each use one at a time:

- connections are in autocommit mode and every write is one explicit transaction
  (``BEGIN`` … ``COMMIT``): a single-statement read costs one round trip, and no
  statement outside ``write`` can leave half a change behind;
- ``snapshot`` is a read-only ``REPEATABLE READ`` transaction (the feed's counter
  and rows seen at one instant, as SQLite's ``BEGIN`` gives);
- a write that loses a race (a deadlock, a serialization failure, a unique key
  another node took meanwhile) is rolled back and run again from the start, where
  its own checks see the winner's row;
- a dropped connection (a PostgreSQL restart) is thrown away with every idle one,
  and the work is tried once more on a new connection when nothing of it can have
  been committed; otherwise the caller gets ``StorageUnavailable``, like a
  locked SQLite file. The next call connects afresh: a restart never kills a node.
"""

from __future__ import annotations

import functools
import logging
import re
import select
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Protocol, TypeVar

import psycopg
from psycopg import errors as pg_errors

from backend.core.errors import StorageUnavailable

T = TypeVar("T")
log = logging.getLogger(__name__)
POOL_SIZE = 8
"""Connections a node keeps at most (each serves one thread at a time)."""
WAIT_SECONDS = 10.0
"""How long a call waits for a free connection before ``StorageUnavailable``."""
CONNECT_SECONDS = 5
RACE_TRIES = 5
"""Runs of a write that keeps losing races (deadlock, serialization, unique key)."""


class Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...
    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...


class Connection(Protocol):
    """What the store's work functions use: an ``sqlite3.Connection`` or a ``PgConnection``."""

    def execute(self, sql: str, parameters: Any = ..., /) -> Cursor: ...


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@functools.lru_cache(maxsize=1024)
def translate(sql: str) -> str:
    """``sql`` with SQLite's ``?`` and ``:name`` parameters in psycopg's style."""
    out: list[str] = []
    styles: set[str] = set()
    i, n = 0, len(sql)
    while i < n:
        ch = sql[i]
        if ch in "'\"":  # a literal or a quoted name: copied as is ('' is two literals)
            end = sql.find(ch, i + 1)
            if end < 0:
                raise ValueError(f"unterminated {ch} in SQL: {sql!r}")
            out.append(sql[i : end + 1].replace("%", "%%"))
            i = end + 1
        elif sql.startswith("--", i):
            end = sql.find("\n", i)
            end = n if end < 0 else end
            out.append(sql[i:end].replace("%", "%%"))
            i = end
        elif ch == "%":
            out.append("%%")
            i += 1
        elif ch == "?":
            styles.add("?")
            out.append("%s")
            i += 1
        elif sql.startswith("::", i):
            out.append("::")
            i += 2
        elif ch == ":" and (name := _NAME.match(sql, i + 1)):
            styles.add(":")
            out.append(f"%({name.group()})s")
            i = name.end()
        else:
            out.append(ch)
            i += 1
    if len(styles) > 1:
        raise ValueError(f"SQL mixes ? and :name parameters: {sql!r}")
    return "".join(out)


class PgConnection:
    """A psycopg connection that takes the store's SQLite-style statements."""

    __slots__ = ("raw",)

    def __init__(self, raw: psycopg.Connection[Any]) -> None:
        self.raw = raw

    def execute(
        self, sql: str, parameters: Sequence[Any] | Mapping[str, Any] = (), /
    ) -> psycopg.Cursor[Any]:
        return self.raw.execute(translate(sql), parameters)


def pg_unavailable(exc: Exception) -> StorageUnavailable:
    """Translate a PostgreSQL failure into the domain's ``StorageUnavailable``."""
    if isinstance(exc, psycopg.OperationalError):
        why = "the database cannot be reached"
    elif isinstance(exc, pg_errors.DiskFull):
        why = "the database is full"
    elif isinstance(exc, _RACES):
        why = "the database is busy"
    else:
        why = "storage failed"
    return StorageUnavailable(f"{why}; nothing was stored, try again later")


_RACES = (pg_errors.DeadlockDetected, pg_errors.SerializationFailure, pg_errors.UniqueViolation)


class _Dropped(Exception):
    """The connection died before anything of the work could have been committed."""


def _hung_up(conn: psycopg.Connection[Any]) -> bool:
    """An idle connection the server has closed: its socket reads (the server's goodbye,
    or end of file). Checked without a round trip, so a write that must not run twice
    never goes out on a connection that died while it sat in the pool."""
    try:
        readable, _, _ = select.select([conn.fileno()], [], [], 0)
    except (OSError, ValueError, psycopg.Error):
        return True
    return bool(readable)


class PgDatabase:
    """A small pool of connections to one PostgreSQL database, and the store's ways to
    run work on it (see the module's docstring)."""

    def __init__(self, url: str, *, size: int = POOL_SIZE, wait: float = WAIT_SECONDS) -> None:
        self.url = url
        self._size = size
        self._wait = wait
        self._idle: list[psycopg.Connection[Any]] = []
        self._open = 0  # idle + in use
        self._closed = False
        self._cond = threading.Condition()

    # -- the pool ----------------------------------------------------------------------
    def connect(self) -> psycopg.Connection[Any]:
        return psycopg.connect(
            self.url,
            autocommit=True,
            connect_timeout=CONNECT_SECONDS,
            application_name="pairchat",
        )

    def _take(self, *, wait: bool) -> psycopg.Connection[Any] | None:
        with self._cond:
            if not self._cond.wait_for(
                lambda: self._closed or self._idle or self._open < self._size,
                timeout=self._wait if wait else 0,
            ):
                if not wait:
                    return None
                raise StorageUnavailable("the database is busy; nothing was stored, try again")
            if self._closed:
                raise StorageUnavailable("the accounts store is closed")
            idle = self._idle.pop() if self._idle else None
            if idle is None:
                self._open += 1
        if idle is not None:
            if not _hung_up(idle):
                return idle
            idle.close()  # the server closed it while idle (a restart): a new one instead
        try:
            return self.connect()
        except BaseException:
            self._forget(None)
            raise

    def _give_back(self, conn: psycopg.Connection[Any]) -> None:
        if conn.closed or conn.broken or conn.info.transaction_status != 0:  # 0: IDLE
            self._forget(conn)
            return
        with self._cond:
            if self._closed:
                conn.close()
                self._open -= 1
            else:
                self._idle.append(conn)
            self._cond.notify()

    def _forget(self, conn: psycopg.Connection[Any] | None) -> None:
        """Drop a connection (and, when it was dropped by the server, the idle ones too:
        a restart took them all)."""
        with self._cond:
            stale = self._idle if conn is not None and conn.broken else []
            self._idle = [] if stale else self._idle
            self._open -= 1 + len(stale)
            self._cond.notify_all()
        for each in [conn, *stale]:
            if each is not None:
                each.close()

    @contextmanager
    def _connection(self) -> Iterator[PgConnection]:
        conn = self._take(wait=True)
        assert conn is not None
        try:
            yield PgConnection(conn)
        finally:
            self._give_back(conn)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            idle, self._idle = self._idle, []
            self._open -= len(idle)
            self._cond.notify_all()
        for conn in idle:
            conn.close()

    # -- running work ------------------------------------------------------------------
    def read(self, work: Callable[[PgConnection], T]) -> T:
        """One statement or more, each seeing the latest commits (no transaction)."""
        return self._run(work, begin=None)

    def snapshot(self, work: Callable[[PgConnection], T]) -> T:
        """Several reads that see the database at one instant."""
        return self._run(work, begin="BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")

    def write(self, work: Callable[[PgConnection], T]) -> T:
        """One transaction; run again from the start when it loses a race."""
        return self._run(work, begin="BEGIN")

    def statement(self, work: Callable[[PgConnection], T]) -> T:
        """One statement that is its own transaction (autocommit): its locks last only
        while the server runs it. Not run again after a lost race (there is none to
        lose for a statement that locks its rows in one order), nor after a dropped
        connection: the statement may have committed before the answer was lost."""
        return self._run(work, begin=None, writes=True)

    def try_read(self, work: Callable[[PgConnection], T]) -> T | None:
        """``read`` when a connection is free at once; None otherwise (never waits)."""
        conn = self._take(wait=False)
        if conn is None:
            return None
        try:
            return work(PgConnection(conn))
        except psycopg.Error as exc:
            raise pg_unavailable(exc) from exc
        finally:
            self._give_back(conn)

    def _run(
        self, work: Callable[[PgConnection], T], begin: str | None, *, writes: bool = False
    ) -> T:
        dropped = False
        for attempt in range(RACE_TRIES):
            try:
                with self._connection() as conn:
                    return self._once(conn, work, begin, writes=writes)
            except _Dropped as exc:
                if dropped:  # a second new connection died too: the server is down
                    cause = exc.__cause__ or exc
                    raise pg_unavailable(cause if isinstance(cause, Exception) else exc) from exc
                dropped = True
                log.warning("PostgreSQL connection lost; trying again on a new one")
            except _RACES as exc:
                if begin != "BEGIN" or attempt == RACE_TRIES - 1:
                    raise pg_unavailable(exc) from exc
            except psycopg.OperationalError as exc:
                raise pg_unavailable(exc) from exc
            except psycopg.Error as exc:
                log.error("PostgreSQL statement failed: %s", exc)
                raise pg_unavailable(exc) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def _once(
        conn: PgConnection, work: Callable[[PgConnection], T], begin: str | None, *, writes: bool
    ) -> T:
        raw = conn.raw
        committing = writes  # an autocommit write commits as it runs
        try:
            if begin is not None:
                raw.execute(begin)
            try:
                result = work(conn)
            except BaseException:
                if begin is not None and not raw.broken:
                    raw.execute("ROLLBACK")
                raise
            if begin is not None:
                committing = True
                raw.execute("COMMIT")
            return result
        except psycopg.OperationalError as exc:
            # Dropped before COMMIT was sent (or a read): nothing of the work is stored,
            # so it can run again. A COMMIT whose answer was lost may have happened.
            if raw.broken and not committing:
                raise _Dropped() from exc
            raise
