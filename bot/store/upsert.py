"""INSERT ... ON CONFLICT for the two databases Lore runs on (SQLite, PostgreSQL)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql, sqlite


def insert_or_update(
    connection: Connection, table: Table, values: dict[str, Any], update: dict[str, Any], where: Any
) -> bool:
    """Insert `values`, or, when a row with the same primary key exists and `where` holds for
    it, apply `update` to it; whether a row was inserted or updated. Atomic: two processes
    racing on one key are serialized by the database (the second sees the first's row)."""
    insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
    statement = (
        insert(table)
        .values(**values)
        .on_conflict_do_update(index_elements=list(table.primary_key.columns), set_=update, where=where)
        # RETURNING, not rowcount: psycopg reports no rowcount for an upsert here.
        .returning(*table.primary_key.columns)
    )
    return connection.execute(statement).first() is not None
