"""What the console adds to the answer-log database (#17): the index its pages read, created on
databases made before it, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import inspect, text

from bot.store.database import Database
from tests.support.postgres import any_database, postgres_url  # noqa: F401  (fixtures)


def test_a_database_made_before_the_console_gets_its_index_when_opened(any_database: Database) -> None:  # noqa: F811
    with any_database.engine.begin() as connection:
        connection.execute(text("DROP INDEX ix_answers_console"))
    assert "ix_answers_console" not in {index["name"] for index in inspect(any_database.engine).get_indexes("answers")}
    reopened = Database(any_database.url)
    try:
        indexes = {index["name"]: index["column_names"] for index in inspect(reopened.engine).get_indexes("answers")}
    finally:
        reopened.close()
    assert indexes["ix_answers_console"] == ["created_at", "place", "platform", "confident", "id"]


def test_opening_a_database_twice_leaves_one_index(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'lore.db'}"
    Database(url).close()
    database = Database(url)
    try:
        names = [index["name"] for index in inspect(database.engine).get_indexes("answers")]
    finally:
        database.close()
    assert names.count("ix_answers_console") == 1
