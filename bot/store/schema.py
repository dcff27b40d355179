"""Creating and upgrading the answer-log schema, one process at a time.

Two processes starting at once (two `lore serve` replicas, `lore serve` beside a CLI command)
would otherwise both see a table or column missing and both create it, and the second fails.
PostgreSQL: the work runs in one transaction holding a transaction-level advisory lock, so the
second process waits and then finds everything in place. SQLite: an exclusive `flock` on a
file beside the database does the same (SQLite's DDL does not take part in the driver's
transactions)."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Connection, Engine, MetaData, inspect, text
from sqlalchemy.engine import Inspector

# Any fixed 64-bit number; it only has to differ from other advisory locks on the server.
POSTGRES_LOCK_KEY = 0x4C6F7265_5363686D  # "LoreSchm"

# Columns added after a table's first release, with their SQL types: older databases get them
# (null: not recorded then). Kept in order; a column is never removed from this list.
LATER_COLUMNS: dict[str, dict[str, str]] = {
    "answers": {"readers": "JSON", "generated": "TEXT"},
    "feedback": {
        "asker_id": "VARCHAR(256)",
        "review": "VARCHAR(16)",
        "reviewed_by": "VARCHAR(256)",
        "reviewed_at": "TIMESTAMP WITH TIME ZONE",
    },
}
# Run once, right after a column is added to a table that already had rows.
BACKFILLS: dict[tuple[str, str], str] = {
    # Corrections typed before reviews existed were never reviewed: they wait like new ones.
    ("feedback", "review"): "UPDATE feedback SET review = 'pending' WHERE correction <> ''",
}
# Tables of an older release whose rows now live in another table: {old table: (new table,
# {new column: SQL expression over the old table's row `old`})}. Copied once, then dropped.
MERGED_TABLES: dict[str, tuple[str, dict[str, str]]] = {
    # Slack kept only the threads it answered in, not its messages' ids: the thread's ts stands
    # in for the message id (never looked up as a message; Slack asks only about threads).
    "slack_threads": (
        "sent_messages",
        {
            "platform": "'slack'",
            "conversation_id": "old.channel_id",
            "message_id": "old.thread_ts",
            "thread_id": "old.thread_ts",
            "sent_at": "old.answered_at",
        },
    ),
    "teams_sent_answers": (
        "sent_messages",
        {
            "platform": "'teams'",
            "conversation_id": "old.conversation_id",
            "message_id": "old.activity_id",
            "answer_id": "old.answer_id",
            "sent_at": "old.sent_at",
        },
    ),
}


def create_schema(engine: Engine, metadata: MetaData, sqlite_file: Path | None) -> None:
    """Create missing tables, add missing columns and move the rows of merged tables into the
    table that replaced them, serialized across processes."""
    with _sqlite_lock(sqlite_file), engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            # Released at commit: the next process waits here and then finds nothing to do.
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": POSTGRES_LOCK_KEY})
        metadata.create_all(connection)
        inspector = inspect(connection)
        _add_later_columns(connection, inspector)
        _merge_old_tables(connection, inspector, metadata)
        _add_later_indexes(connection, metadata)


def _add_later_columns(connection: Connection, inspector: Inspector) -> None:
    for table, columns in LATER_COLUMNS.items():
        present = {column["name"] for column in inspector.get_columns(table)}
        for name, sql_type in columns.items():
            if name in present:
                continue
            if connection.dialect.name == "sqlite" and sql_type.endswith("WITH TIME ZONE"):
                sql_type = "DATETIME"
            connection.execute(text(f"ALTER TABLE {table} ADD COLUMN {name} {sql_type}"))
            backfill = BACKFILLS.get((table, name))
            if backfill is not None:
                connection.execute(text(backfill))


def _add_later_indexes(connection: Connection, metadata: MetaData) -> None:
    """Indexes declared since a table was created (`create_all` makes them only with the table)."""
    for table in metadata.sorted_tables:
        for index in table.indexes:
            index.create(connection, checkfirst=True)


def _merge_old_tables(connection: Connection, inspector: Inspector, metadata: MetaData) -> None:
    for old, (new, columns) in MERGED_TABLES.items():
        if not inspector.has_table(old):
            continue
        # Rows already there are skipped, so an interrupted copy can simply run again.
        key = metadata.tables[new].primary_key.columns.keys()
        already_copied = " AND ".join(f"new.{column} = {columns[column]}" for column in key)
        connection.execute(
            text(
                f"INSERT INTO {new} ({', '.join(columns)}) SELECT {', '.join(columns.values())} FROM {old} AS old"
                f" WHERE NOT EXISTS (SELECT 1 FROM {new} AS new WHERE {already_copied})"
            )
        )
        connection.execute(text(f"DROP TABLE {old}"))


@contextmanager
def _sqlite_lock(database_file: Path | None) -> Iterator[None]:
    if database_file is None:  # PostgreSQL, or an in-memory SQLite database
        yield
        return
    try:
        fd = os.open(database_file.with_name(database_file.name + ".schema-lock"), os.O_RDWR | os.O_CREAT, 0o600)
    except OSError:  # a read-only folder: nobody can be changing the schema there either
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # blocking: the other process finishes in milliseconds
        yield
    finally:
        os.close(fd)  # closing releases the lock
