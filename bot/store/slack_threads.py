"""Slack threads the bot has answered in, so replies there count as follow-ups without a new
mention. Kept in the answer-log database so follow-ups still work after a restart."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, insert, select
from sqlalchemy.exc import IntegrityError

from bot.store.database import Database
from bot.store.tables import slack_threads


class AnsweredThreads:
    """The set of (channel, thread) pairs the bot has posted an answer in."""

    def __init__(self, db: Database) -> None:
        self._engine = db.engine

    def remember(self, channel_id: str, thread_ts: str) -> None:
        """Mark the thread as one the bot takes part in."""
        try:
            with self._engine.begin() as connection:
                connection.execute(
                    insert(slack_threads).values(
                        channel_id=channel_id, thread_ts=thread_ts, answered_at=datetime.now(UTC)
                    )
                )
        except IntegrityError:
            pass  # already known: the bot answered there before

    def contains(self, channel_id: str, thread_ts: str) -> bool:
        query = select(slack_threads.c.thread_ts).where(
            slack_threads.c.channel_id == channel_id, slack_threads.c.thread_ts == thread_ts
        )
        with self._engine.connect() as connection:
            return connection.execute(query).first() is not None

    def purge_older_than(self, days: float) -> int:
        """Forget threads answered more than `days` ago (the answer log's retention: their
        turns are gone from thread memory too); returns how many went."""
        cutoff = datetime.now(UTC) - timedelta(days=days)
        with self._engine.begin() as connection:
            return connection.execute(delete(slack_threads).where(slack_threads.c.answered_at < cutoff)).rowcount
