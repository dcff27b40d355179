"""The answer-log database (SQLite under LORE_HOME by default, PostgreSQL via a SQLAlchemy URL).

Every table lives on the one `metadata` below; each store module defines its own table on it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine, MetaData, create_engine, event

metadata = MetaData()


class Database:
    """Owns the engine and creates missing tables on open."""

    def __init__(self, url: str) -> None:
        if url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        self.url = url
        self.engine: Engine = create_engine(url, pool_pre_ping=True)
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        # Import the store modules so their tables are registered on `metadata`.
        from bot.store import tables  # noqa: F401

        metadata.create_all(self.engine)

    def close(self) -> None:
        self.engine.dispose()


def _sqlite_pragmas(connection: object, _record: object) -> None:
    cursor = connection.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def as_utc(moment: datetime) -> datetime:
    """Everything is stored in UTC; SQLite hands datetimes back naive."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
