"""Which answer a Teams message carried. Teams' built-in feedback (`message/submitAction`)
names only the rated message's activity id, so the id of every answer message the bot sends is
kept here, in the answer-log database, to survive restarts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, insert, select

from bot.store.database import Database
from bot.store.tables import teams_sent_answers


class SentAnswers:
    """Maps (conversation, sent activity id) to the answer id it rendered."""

    def __init__(self, db: Database) -> None:
        self._engine = db.engine

    def remember(self, conversation_id: str, activity_id: str, answer_id: str) -> None:
        """Record that `activity_id` in `conversation_id` shows answer `answer_id`."""
        with self._engine.begin() as connection:
            connection.execute(
                insert(teams_sent_answers).values(
                    conversation_id=conversation_id,
                    activity_id=activity_id,
                    answer_id=answer_id,
                    sent_at=datetime.now(UTC),
                )
            )

    def answer_id(self, conversation_id: str, activity_id: str) -> str | None:
        """The answer shown by a message, or None when the bot did not send it (or forgot)."""
        query = select(teams_sent_answers.c.answer_id).where(
            teams_sent_answers.c.conversation_id == conversation_id,
            teams_sent_answers.c.activity_id == activity_id,
        )
        with self._engine.connect() as connection:
            return connection.execute(query).scalar_one_or_none()

    def purge_older_than(self, days: float) -> int:
        """Forget messages older than `days` (kept as long as the answers they show)."""
        cutoff = datetime.now(UTC) - timedelta(days=days)
        with self._engine.begin() as connection:
            result = connection.execute(delete(teams_sent_answers).where(teams_sent_answers.c.sent_at < cutoff))
            return result.rowcount
