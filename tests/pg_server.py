"""A throwaway PostgreSQL server for tests: the real thing, on 127.0.0.1, in a temp folder.

``start_postgres()`` runs ``initdb`` in a fresh folder (as the ``postgres`` user
when the tests run as root: PostgreSQL refuses root), starts the server with
``pg_ctl`` on a free loopback port with its unix socket in that folder (fsync
off: the data is thrown away), creates the ``pairchat`` database and yields a
``PostgresServer``; at the end it stops the server (``-m immediate``) and removes
the folder.

Fixtures for other test modules (import them: ``from tests.pg_server import
postgres_server, postgres_url``):

- ``postgres_server``: one server for the whole session;
- ``postgres_url``: a fresh, empty database on it for one test (dropped after).

The binaries are looked up in ``$PAIRCHAT_PG_BIN``, then the newest
``/usr/lib/postgresql/*/bin``, then ``PATH``. When they are missing the fixture
fails (never skips): CI installs PostgreSQL.
"""

from __future__ import annotations

import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support import free_port

USER = "postgres"
DATABASE = "pairchat"
_names = itertools.count(1)


class PostgresMissing(RuntimeError):
    pass


def pg_bin() -> Path:
    """The folder holding ``initdb``, ``pg_ctl`` and ``psql``."""
    candidates = []
    if os.environ.get("PAIRCHAT_PG_BIN"):
        candidates.append(Path(os.environ["PAIRCHAT_PG_BIN"]))
    candidates += sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda path: int(path.parent.name) if path.parent.name.isdigit() else 0,
        reverse=True,
    )
    found = shutil.which("initdb")
    if found:
        candidates.append(Path(found).parent)
    for folder in candidates:
        if (folder / "initdb").exists() and (folder / "pg_ctl").exists():
            return folder
    raise PostgresMissing(
        "PostgreSQL binaries (initdb, pg_ctl) not found in $PAIRCHAT_PG_BIN, "
        "/usr/lib/postgresql/*/bin or PATH: install PostgreSQL (apt-get install postgresql)"
    )


@dataclass
class PostgresServer:
    folder: Path
    port: int
    bin: Path
    run_as: list[str]

    def url(self, database: str = DATABASE) -> str:
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{database}"

    @property
    def socket_dir(self) -> Path:
        return self.folder

    def sql(self, statement: str, database: str = "postgres") -> str:
        """Run one statement with ``psql`` (as the server's superuser); its output."""
        done = subprocess.run(
            [
                *self.run_as,
                str(self.bin / "psql"),
                "-X",
                "-q",
                "-At",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                str(self.folder),
                "-p",
                str(self.port),
                "-U",
                USER,
                "-d",
                database,
                "-c",
                statement,
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        if done.returncode != 0:
            raise RuntimeError(f"psql {statement!r} failed: {done.stderr.strip()}")
        return done.stdout

    def create_database(self, name: str | None = None) -> str:
        """A new empty database; returns its URL."""
        name = name or f"t{os.getpid()}_{next(_names)}"
        self.sql(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop_database(self, name: str) -> None:
        self.sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def pg_ctl(self, *args: str) -> None:
        """``pg_ctl`` on this server (``stop -m fast``, ``start`` …: restart tests)."""
        run = [*self.run_as, str(self.bin / "pg_ctl"), "-D", str(self.folder / "data"), "-w"]
        subprocess.run([*run, *args], check=True, capture_output=True, timeout=60)

    def start(self) -> None:
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} "
            f"-c unix_socket_directories={self.folder} -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=300"
        )
        self.pg_ctl("-l", str(self.folder / "server.log"), "-o", options, "start")

    def stop(self, mode: str = "immediate") -> None:
        self.pg_ctl("-m", mode, "stop")


def _run_as() -> list[str]:
    """Commands run as ``postgres`` when we are root (initdb refuses root)."""
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam(USER)
    except KeyError as exc:
        raise PostgresMissing(f"running as root and there is no '{USER}' user") from exc
    return ["runuser", "-u", USER, "--"]


@contextmanager
def start_postgres() -> Iterator[PostgresServer]:
    """A running server with an empty ``pairchat`` database, gone at the end."""
    binaries = pg_bin()
    run_as = _run_as()
    folder = Path(tempfile.mkdtemp(prefix="pairchat-pg-"))
    if run_as:
        shutil.chown(folder, USER, USER)
    server = PostgresServer(folder, 0, binaries, run_as)
    try:
        subprocess.run(
            [
                *run_as,
                str(binaries / "initdb"),
                "-D",
                str(folder / "data"),
                "-U",
                USER,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
        for attempt in range(3):  # the free port may be taken before the server binds it
            server.port = free_port()
            try:
                server.start()
                break
            except subprocess.CalledProcessError:
                if attempt == 2:
                    log = folder / "server.log"
                    raise RuntimeError(
                        "PostgreSQL did not start: " + (log.read_text() if log.exists() else "")
                    ) from None
        try:
            server.create_database(DATABASE)
            yield server
        finally:
            server.stop()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    try:
        with start_postgres() as server:
            yield server
    except PostgresMissing as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh, empty database for one test."""
    name = f"t{os.getpid()}_{next(_names)}"
    url = postgres_server.create_database(name)
    yield url
    postgres_server.drop_database(name)
