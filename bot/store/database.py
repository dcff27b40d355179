"""The answer-log database (SQLite under LORE_HOME by default, PostgreSQL via a SQLAlchemy URL).

Every table lives on the one `metadata` of `bot.store.tables`; the store modules use them.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.pool import ConnectionPoolEntry

from bot.store.schema import create_schema
from bot.store.tables import metadata


class Database:
    """Owns the engine; creates missing tables and columns on open (one process at a time)."""

    def __init__(self, url: str) -> None:
        sqlite_file = _sqlite_file(url)
        if sqlite_file is not None:
            _create_private(sqlite_file)
        self.url = url
        self.engine: Engine = create_engine(url, pool_pre_ping=True)
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        create_schema(self.engine, metadata, sqlite_file)

    def close(self) -> None:
        self.engine.dispose()


def _sqlite_pragmas(connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
    cursor = connection.cursor()
    # The timeout first: switching to WAL waits for a lock when another process writes.
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.close()


def _sqlite_file(url: str) -> Path | None:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def _create_private(database_file: Path) -> None:
    """The answer log holds questions, answers and feedback: a database Lore creates (and the
    folder it creates for it) is readable by its owner only. SQLite gives the -wal and -shm
    files the database file's mode. An existing file or folder keeps the mode it has."""
    database_file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        os.close(os.open(database_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass


def as_utc(moment: datetime) -> datetime:
    """Everything is stored in UTC; SQLite hands datetimes back naive."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
