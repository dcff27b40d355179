"""What the bot posted, on every platform, on real SQLite and PostgreSQL databases: Slack's
threads (follow-ups without a mention), Teams' sent answers (feedback names only the message),
and the upgrade of a database that kept them in the two tables of earlier releases."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Column, DateTime, MetaData, String, Table, create_engine, insert, inspect, update

from bot.store.database import Database
from bot.store.sent_messages import SentMessage, SentMessages
from bot.store.tables import metadata, sent_messages
from tests.support.postgres import fresh_database


def test_teams_messages_map_to_the_answers_they_showed(any_database: Database) -> None:
    sent = SentMessages(any_database)
    sent.remember(SentMessage("teams", "19:chan", "m-1", answer_id="answer-1"))
    sent.remember(SentMessage("teams", "19:chan", "m-2", answer_id="answer-2"))
    sent.remember(SentMessage("teams", "a:dm", "m-1", answer_id="answer-3"))  # ids are per conversation
    sent.remember(SentMessage("slack", "19:chan", "m-1", answer_id="other"))  # and per platform

    assert sent.answer_id("teams", "19:chan", "m-1") == "answer-1"
    assert sent.answer_id("teams", "a:dm", "m-1") == "answer-3"
    assert sent.answer_id("teams", "19:chan", "m-9") is None
    restarted = Database(any_database.url)
    assert SentMessages(restarted).answer_id("teams", "19:chan", "m-2") == "answer-2"
    restarted.close()


def test_slack_threads_the_bot_posted_in_are_known_and_remembering_twice_is_harmless(any_database: Database) -> None:
    sent = SentMessages(any_database)
    sent.remember(SentMessage("slack", "C1", "2.0", thread_id="1.0"))
    sent.remember(SentMessage("slack", "C1", "2.0", thread_id="1.0"))  # e.g. the same post noted twice

    assert sent.posted_in_thread("slack", "C1", "1.0")
    assert not sent.posted_in_thread("slack", "C1", "2.0")  # a reply is not a thread of its own
    assert not sent.posted_in_thread("slack", "C2", "1.0")
    assert not sent.posted_in_thread("teams", "C1", "1.0")


def test_messages_past_the_retention_are_purged_on_every_platform(any_database: Database) -> None:
    sent = SentMessages(any_database)
    sent.remember(SentMessage("teams", "19:chan", "m-old", answer_id="a1"))
    sent.remember(SentMessage("slack", "C1", "1.0", thread_id="1.0"))
    sent.remember(SentMessage("teams", "19:chan", "m-new", answer_id="a2"))
    old = datetime.now(UTC) - timedelta(days=100)
    with any_database.engine.begin() as connection:
        connection.execute(update(sent_messages).where(sent_messages.c.message_id != "m-new").values(sent_at=old))

    assert sent.purge_older_than(90) == 2

    assert sent.answer_id("teams", "19:chan", "m-old") is None and not sent.posted_in_thread("slack", "C1", "1.0")
    assert sent.answer_id("teams", "19:chan", "m-new") == "a2"


# --- the upgrade from the two tables of earlier releases --------------------------------------

# The schema as released before `sent_messages`: every other table as it is now, plus these two.
OLD = MetaData()
for _table in metadata.sorted_tables:
    if _table.name != "sent_messages":
        _table.to_metadata(OLD)
old_slack_threads = Table(
    "slack_threads",
    OLD,
    Column("channel_id", String(64), primary_key=True),
    Column("thread_ts", String(32), primary_key=True),
    Column("answered_at", DateTime(timezone=True), nullable=False, index=True),
)
old_teams_sent_answers = Table(
    "teams_sent_answers",
    OLD,
    Column("conversation_id", String(512), primary_key=True),
    Column("activity_id", String(256), primary_key=True),
    Column("answer_id", String(64), nullable=False),
    Column("sent_at", DateTime(timezone=True), nullable=False, index=True),
)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty database on SQLite, then on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'lore.db'}"
        return
    with fresh_database(request.getfixturevalue("postgres_url")) as url:
        yield url


def test_an_older_database_keeps_its_slack_threads_and_teams_answers_in_one_table(empty_database_url: str) -> None:
    now = datetime.now(UTC)
    engine = create_engine(empty_database_url)
    OLD.create_all(engine)
    with engine.begin() as connection:
        connection.execute(
            insert(old_slack_threads),
            [
                {"channel_id": "C1", "thread_ts": "1.0", "answered_at": now - timedelta(days=1)},
                {"channel_id": "C1", "thread_ts": "5.0", "answered_at": now - timedelta(days=100)},
            ],
        )
        connection.execute(
            insert(old_teams_sent_answers),
            [
                {"conversation_id": "19:a", "activity_id": "m-1", "answer_id": "x", "sent_at": now - timedelta(days=1)},
                {
                    "conversation_id": "19:a",
                    "activity_id": "m-2",
                    "answer_id": "y",
                    "sent_at": now - timedelta(days=100),
                },
            ],
        )
    engine.dispose()

    upgraded = Database(empty_database_url)  # opening it upgrades the schema
    try:
        sent = SentMessages(upgraded)
        assert sent.posted_in_thread("slack", "C1", "1.0") and sent.posted_in_thread("slack", "C1", "5.0")
        assert sent.answer_id("teams", "19:a", "m-1") == "x" and sent.answer_id("teams", "19:a", "m-2") == "y"
        tables = set(inspect(upgraded.engine).get_table_names())
        assert "slack_threads" not in tables and "teams_sent_answers" not in tables
        assert sent.purge_older_than(90) == 2  # the old rows keep their dates
        assert sent.posted_in_thread("slack", "C1", "1.0") and not sent.posted_in_thread("slack", "C1", "5.0")
        assert sent.answer_id("teams", "19:a", "m-1") == "x" and sent.answer_id("teams", "19:a", "m-2") is None
    finally:
        upgraded.close()
    Database(empty_database_url).close()  # opening it again finds nothing to do
