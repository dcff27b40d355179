"""A real PostgreSQL server for the store tests.

`postgres_url` (session fixture) is `LORE_TEST_POSTGRES_URL` when set (`.ci/run` starts a server
with `.ci/start-postgres.sh` and exports it); otherwise it starts a throwaway server itself
(`initdb` + `pg_ctl` on a temp directory and a free port, as the `postgres` user when running
as root, since initdb refuses root) and stops it at the end. When neither works the tests that
need it are skipped with the reason.

`fresh_database(url)` gives each test its own empty database on that server; `any_database`
(a fixture) runs a test once on SQLite and once on such a database.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from glob import glob
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from bot.store.database import Database

ENV = "LORE_TEST_POSTGRES_URL"


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """SQLAlchemy URL (postgresql+psycopg://...) of a running PostgreSQL server."""
    url = os.environ.get(ENV)
    if url:
        yield url
        return
    try:
        server = ThrowawayPostgres.start()
    except PostgresUnavailable as reason:
        pytest.skip(f"no PostgreSQL: {reason} (set {ENV} to use a running server)")
    try:
        yield server.url
    finally:
        server.stop()


@contextlib.contextmanager
def fresh_database(url: str) -> Iterator[str]:
    """A new, empty database on the server at `url`; dropped afterwards."""
    import psycopg

    name = f"lore_test_{uuid.uuid4().hex[:12]}"
    admin = _psycopg_conninfo(url)
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(url).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _psycopg_conninfo(url: str) -> str:
    parsed = make_url(url)
    parts = {
        "host": parsed.host or "127.0.0.1",
        "port": parsed.port or 5432,
        "user": parsed.username or "postgres",
        "password": parsed.password or "",
        "dbname": parsed.database or "postgres",
    }
    return " ".join(f"{key}='{value}'" for key, value in parts.items() if value != "")


class PostgresUnavailable(Exception):
    """No PostgreSQL server can be started here."""


class ThrowawayPostgres:
    """A PostgreSQL cluster in a temp directory, listening on 127.0.0.1 only, trust auth."""

    def __init__(self, bin_dir: Path, data_dir: Path, port: int, as_postgres: bool) -> None:
        self.bin_dir = bin_dir
        self.data_dir = data_dir
        self.port = port
        self.as_postgres = as_postgres

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    @classmethod
    def start(cls) -> ThrowawayPostgres:
        bin_dir = _find_bin_dir()
        as_postgres = os.geteuid() == 0
        if as_postgres and shutil.which("runuser") is None:
            raise PostgresUnavailable("running as root without runuser to switch to postgres")
        root = Path(tempfile.mkdtemp(prefix="lore-pg-"))
        data_dir = root / "data"
        if as_postgres:
            shutil.chown(root, user="postgres")
        server = cls(bin_dir, data_dir, _free_port(), as_postgres)
        try:
            server._run(
                "initdb",
                "-D",
                str(data_dir),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--no-sync",
            )
            options = f"-p {server.port} -c listen_addresses=127.0.0.1 -k {root} -c fsync=off"
            server._run(
                "pg_ctl",
                "-D",
                str(data_dir),
                "-o",
                options,
                "-l",
                str(root / "server.log"),
                "-w",
                "-t",
                "60",
                "start",
            )
        except PostgresUnavailable:
            shutil.rmtree(root, ignore_errors=True)
            raise
        return server

    def stop(self) -> None:
        with contextlib.suppress(PostgresUnavailable):
            self._run("pg_ctl", "-D", str(self.data_dir), "-m", "fast", "-w", "stop")
        shutil.rmtree(self.data_dir.parent, ignore_errors=True)

    def _run(self, tool: str, *args: str) -> None:
        command = [str(self.bin_dir / tool), *args]
        if self.as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            raise PostgresUnavailable(f"{tool} failed: {(result.stderr or result.stdout).strip()}")


def _find_bin_dir() -> Path:
    candidates = [Path(p).parent for p in [shutil.which("initdb")] if p]
    candidates += [Path("/usr/local/bin")]
    candidates += [Path(p) for p in sorted(glob("/usr/lib/postgresql/*/bin"), reverse=True)]
    for folder in candidates:
        if (folder / "initdb").is_file() and (folder / "pg_ctl").is_file():
            return folder
    raise PostgresUnavailable("initdb/pg_ctl not found (apt-get install postgresql)")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A `Database` on SQLite, then on a fresh PostgreSQL database."""
    if request.param == "sqlite":
        database = Database(f"sqlite:///{tmp_path / 'lore.db'}")
        yield database
        database.close()
        return
    with fresh_database(request.getfixturevalue("postgres_url")) as url:
        database = Database(url)
        yield database
        database.close()


def _catalog_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    if request.param == "sqlite":
        yield None
        return
    with fresh_database(request.getfixturevalue("postgres_url")) as url:
        yield url


# The index catalog's location for a KnowledgeBase: None (SQLite under its home), then a fresh
# PostgreSQL database's URL. `module_catalog_url`: the same, one per test module.
catalog_url = pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])(_catalog_url)
module_catalog_url = pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)(_catalog_url)
