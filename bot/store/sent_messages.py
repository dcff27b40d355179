"""The messages the bot posted, on every platform, kept in the answer-log database so they are
still known after a restart: Slack asks whether the bot answered in a thread (replies there are
follow-ups without a new mention), Teams which answer a message showed (its built-in feedback,
`message/submitAction`, names only the rated message)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, insert, select
from sqlalchemy.exc import IntegrityError

from bot.store.database import Database
from bot.store.tables import sent_messages


@dataclass(frozen=True)
class SentMessage:
    """One message the bot posted; message ids are unique within a conversation."""

    platform: str
    conversation_id: str
    message_id: str
    thread_id: str | None = None  # None: the platform does not need the thread
    answer_id: str | None = None  # None: posted before its answer existed, or shows none


class SentMessages:
    """Every platform's sent messages, one table; kept as long as the answers they show."""

    def __init__(self, db: Database) -> None:
        self._engine = db.engine

    def remember(self, message: SentMessage) -> None:
        """Record that the bot posted `message`; recording it again changes nothing."""
        try:
            with self._engine.begin() as connection:
                connection.execute(
                    insert(sent_messages).values(
                        platform=message.platform,
                        conversation_id=message.conversation_id,
                        message_id=message.message_id,
                        thread_id=message.thread_id,
                        answer_id=message.answer_id,
                        sent_at=datetime.now(UTC),
                    )
                )
        except IntegrityError:
            pass  # already recorded

    def posted_in_thread(self, platform: str, conversation_id: str, thread_id: str) -> bool:
        """Whether the bot posted anything in the thread (and still remembers it)."""
        query = (
            select(sent_messages.c.message_id)
            .where(
                sent_messages.c.platform == platform,
                sent_messages.c.conversation_id == conversation_id,
                sent_messages.c.thread_id == thread_id,
            )
            .limit(1)
        )
        with self._engine.connect() as connection:
            return connection.execute(query).first() is not None

    def answer_id(self, platform: str, conversation_id: str, message_id: str) -> str | None:
        """The answer a message showed; None when the bot did not send it, forgot it, or it
        showed no answer."""
        query = select(sent_messages.c.answer_id).where(
            sent_messages.c.platform == platform,
            sent_messages.c.conversation_id == conversation_id,
            sent_messages.c.message_id == message_id,
        )
        with self._engine.connect() as connection:
            return connection.execute(query).scalar_one_or_none()

    def purge_older_than(self, days: float) -> int:
        """Forget messages sent more than `days` ago, on every platform (the answer log's
        retention: the answers and thread turns they point to are gone too); returns how many
        went."""
        cutoff = datetime.now(UTC) - timedelta(days=days)
        with self._engine.begin() as connection:
            result = connection.execute(delete(sent_messages).where(sent_messages.c.sent_at < cutoff))
        return int(result.rowcount or 0)
