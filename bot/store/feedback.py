"""Feedback on answers: 👍/👎 buttons, the "what was wrong" modal, and free-text feedback, from
every platform, kept in the answer-log database so customization can learn from it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from sqlalchemy import Column, DateTime, Integer, String, Table, Text, insert, select, update

from bot.store.database import Database, as_utc, metadata

Rating = Literal["helpful", "not_helpful"]
RATINGS: tuple[Rating, ...] = ("helpful", "not_helpful")

feedback_table = Table(
    "feedback",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    # No foreign key: general feedback has no answer, and answers are purged on their own schedule.
    Column("answer_id", String(64), nullable=True, index=True),
    Column("platform", String(16), nullable=False),
    Column("user_id", String(256), nullable=False),
    Column("rating", String(16), nullable=True),
    Column("text", Text, nullable=False, default=""),
    Column("correction", Text, nullable=False, default=""),
    Column("conversation_id", String(512), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False, index=True),
)


@dataclass(frozen=True)
class Feedback:
    """One piece of feedback. `answer_id` is None for general feedback about the bot."""

    answer_id: str | None
    platform: str
    user_id: str
    rating: Rating | None
    text: str = ""
    correction: str = ""
    conversation_id: str | None = None
    created_at: datetime | None = None  # set by the store when None
    id: int | None = None  # set by the store

    def __post_init__(self) -> None:
        if self.rating is not None and self.rating not in RATINGS:
            raise ValueError(f"rating must be one of {RATINGS} or None, not {self.rating!r}")


class FeedbackStore:
    """Appends feedback and reads it back, newest first."""

    def __init__(self, db: Database) -> None:
        self._engine = db.engine

    def record(self, feedback: Feedback) -> int:
        """Store `feedback` and return its id."""
        created_at = feedback.created_at or datetime.now(UTC)
        with self._engine.begin() as connection:
            result = connection.execute(
                insert(feedback_table).values(
                    answer_id=feedback.answer_id,
                    platform=feedback.platform,
                    user_id=feedback.user_id,
                    rating=feedback.rating,
                    text=feedback.text,
                    correction=feedback.correction,
                    conversation_id=feedback.conversation_id,
                    created_at=created_at,
                )
            )
            return int(result.inserted_primary_key[0])

    def add_details(self, feedback_id: int, text: str, correction: str) -> bool:
        """Attach what was wrong and the right answer to feedback stored earlier (the 👎 click
        is stored at once; the modal's answers follow). False when `feedback_id` is unknown."""
        query = (
            update(feedback_table)
            .where(feedback_table.c.id == feedback_id)
            .values(text=text, correction=correction)
        )
        with self._engine.begin() as connection:
            return connection.execute(query).rowcount == 1

    def list(self, limit: int | None = None) -> list[Feedback]:
        """Stored feedback, newest first; at most `limit` entries when given."""
        table = feedback_table
        query = select(table).order_by(table.c.created_at.desc(), table.c.id.desc())
        if limit is not None:
            query = query.limit(limit)
        with self._engine.connect() as connection:
            rows = connection.execute(query).mappings().all()
        return [_from_row(row) for row in rows]


def _from_row(row: object) -> Feedback:
    values = dict(row)  # type: ignore[call-overload]
    created_at = as_utc(values["created_at"])
    return Feedback(
        answer_id=values["answer_id"],
        platform=values["platform"],
        user_id=values["user_id"],
        rating=values["rating"],
        text=values["text"],
        correction=values["correction"],
        conversation_id=values["conversation_id"],
        created_at=created_at,
        id=values["id"],
    )
