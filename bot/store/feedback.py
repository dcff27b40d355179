"""Feedback on answers: 👍/👎 buttons, the "what was wrong" modal, and free-text feedback, from
every platform, kept in the answer-log database so customization can learn from it.

Who gave it (`user_id`) and who asked (`asker_id`, from the answer log when the feedback
arrives) are both kept: anyone in a channel can rate an answer there, but only the asker's own
feedback (or an admin's) may teach the model. A typed correction ("the right answer is ...")
always arrives `pending`; an admin approves or rejects it (`lore feedback review`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from sqlalchemy import RowMapping, delete, insert, select, update

from bot.store.answers import StoredAnswer
from bot.store.database import Database, as_utc
from bot.store.tables import answers_table, feedback_table

Rating = Literal["helpful", "not_helpful"]
RATINGS: tuple[Rating, ...] = ("helpful", "not_helpful")
Review = Literal["pending", "approved", "rejected"]
PENDING: Review = "pending"


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
    # Set by the store: the rated answer's asker (None: general feedback, or answer unknown),
    # and the review of `correction` (always `pending` when one is stored).
    asker_id: str | None = None
    review: Review | None = None
    reviewed_by: str | None = None
    reviewed_at: datetime | None = None

    def __post_init__(self) -> None:
        if self.rating is not None and self.rating not in RATINGS:
            raise ValueError(f"rating must be one of {RATINGS} or None, not {self.rating!r}")


class FeedbackStore:
    """Appends feedback and reads it back, newest first."""

    def __init__(self, db: Database) -> None:
        self._engine = db.engine

    def record(self, feedback: Feedback) -> int:
        """Store `feedback` and return its id. The asker is looked up in the answer log and a
        correction is stored `pending`, whatever `feedback` says about either."""
        created_at = feedback.created_at or datetime.now(UTC)
        with self._engine.begin() as connection:
            result = connection.execute(
                insert(feedback_table)
                .values(
                    answer_id=feedback.answer_id,
                    platform=feedback.platform,
                    user_id=feedback.user_id,
                    rating=feedback.rating,
                    text=feedback.text,
                    correction=feedback.correction,
                    conversation_id=feedback.conversation_id,
                    created_at=created_at,
                    asker_id=_asker_of(feedback.answer_id, feedback.platform),
                    review=_review_of(feedback.correction),
                )
                .returning(feedback_table.c.id)
            )
            return int(result.scalar_one())

    def add_details(self, feedback_id: int, user_id: str, text: str, correction: str) -> bool:
        """Attach what was wrong and the right answer to feedback `user_id` stored earlier (the
        👎 click is stored at once; the modal's answers follow); a new correction waits for
        review again. False when `feedback_id` is unknown or was given by someone else."""
        query = (
            update(feedback_table)
            .where(feedback_table.c.id == feedback_id, feedback_table.c.user_id == user_id)
            .values(
                text=text,
                correction=correction,
                review=_review_of(correction),
                reviewed_by=None,
                reviewed_at=None,
            )
        )
        with self._engine.begin() as connection:
            return connection.execute(query).rowcount == 1

    def get(self, feedback_id: int) -> Feedback | None:
        """The feedback with id `feedback_id`, or None when unknown (or purged)."""
        query = select(feedback_table).where(feedback_table.c.id == feedback_id)
        with self._engine.connect() as connection:
            row = connection.execute(query).mappings().first()
        return _from_row(row) if row is not None else None

    def pending_corrections(self) -> list[Feedback]:
        """Corrections waiting for an admin's review, oldest first."""
        table = feedback_table
        query = select(table).where(table.c.review == PENDING).order_by(table.c.id)
        with self._engine.connect() as connection:
            rows = connection.execute(query).mappings().all()
        return [_from_row(row) for row in rows]

    def decide(self, feedback_id: int, approved: bool, reviewer: str) -> bool:
        """Approve or reject the correction of feedback `feedback_id`; False when it has none."""
        table = feedback_table
        query = (
            update(table)
            .where(table.c.id == feedback_id, table.c.review.is_not(None))
            .values(
                review="approved" if approved else "rejected",
                reviewed_by=reviewer,
                reviewed_at=datetime.now(UTC),
            )
        )
        with self._engine.begin() as connection:
            return connection.execute(query).rowcount == 1

    def revise(self, feedback_id: int, correction: str, reviewer: str) -> bool:
        """Approve the correction of feedback `feedback_id` as `reviewer` rewrote it (the admin
        console's "edit"); the giver's own words are replaced. False when it has none."""
        table = feedback_table
        query = (
            update(table)
            .where(table.c.id == feedback_id, table.c.review.is_not(None))
            .values(correction=correction, review="approved", reviewed_by=reviewer, reviewed_at=datetime.now(UTC))
        )
        with self._engine.begin() as connection:
            return connection.execute(query).rowcount == 1

    def purge_older_than(self, days: float) -> int:
        """Delete feedback older than `days` (its retention setting); returns how many went."""
        cutoff = datetime.now(UTC) - timedelta(days=days)
        with self._engine.begin() as connection:
            result = connection.execute(delete(feedback_table).where(feedback_table.c.created_at < cutoff))
        return int(result.rowcount or 0)

    def list(self, limit: int | None = None) -> list[Feedback]:
        """Stored feedback, newest first; at most `limit` entries when given."""
        table = feedback_table
        query = select(table).order_by(table.c.created_at.desc(), table.c.id.desc())
        if limit is not None:
            query = query.limit(limit)
        with self._engine.connect() as connection:
            rows = connection.execute(query).mappings().all()
        return [_from_row(row) for row in rows]


def may_train(feedback: Feedback, admins: frozenset[str]) -> bool:
    """True when `feedback` could become training data as stored: on an answer, given by its
    asker (`asker_id`, recorded by the store) or by an admin; `may_teach` decides per answer."""
    if feedback.answer_id is None:
        return False
    return feedback.user_id == feedback.asker_id or f"{feedback.platform}:{feedback.user_id}" in admins


def may_teach(feedback: Feedback, answer: StoredAnswer, admins: frozenset[str]) -> bool:
    """True when `feedback` on `answer` may become training data: given by the person who
    asked (the answer log's asker, same platform) or by an admin ("platform:user id" in
    `admins`, i.e. `customize.admins`)."""
    own = feedback.platform == answer.platform and feedback.user_id == answer.user_id
    return own or f"{feedback.platform}:{feedback.user_id}" in admins


def _from_row(row: RowMapping) -> Feedback:
    values = dict(row)
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
        asker_id=values["asker_id"],
        review=values["review"],
        reviewed_by=values["reviewed_by"],
        reviewed_at=as_utc(values["reviewed_at"]) if values["reviewed_at"] is not None else None,
    )


def _asker_of(answer_id: str | None, platform: str) -> object:
    """The rated answer's asker, read in the same statement (a scalar subquery)."""
    if answer_id is None:
        return None
    return (
        select(answers_table.c.user_id)
        .where(answers_table.c.id == answer_id, answers_table.c.platform == platform)
        .scalar_subquery()
    )


def _review_of(correction: str) -> Review | None:
    return PENDING if correction.strip() else None
