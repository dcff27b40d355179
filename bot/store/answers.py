"""The answer log: every answer the bot gives, with the question, the asker, the passages it
was given (with their paths), the model and adapter, and timings. Feedback refers to answers by
id; customization reads both."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, insert, select

from bot.store.database import Database, as_utc
from bot.store.tables import answers_table
from bot.types import Answer
from knowledge.types import Passage


@dataclass(frozen=True)
class StoredAnswer:
    """An answer as the log keeps it."""

    id: str
    platform: str
    user_id: str
    conversation_id: str | None
    thread_id: str | None
    question: str
    answer: str
    citations: list[dict[str, Any]]
    model: str
    adapter: str | None
    created_at: datetime
    confident: bool = True
    evidence: list[dict[str, Any]] = field(default_factory=list)
    passages: list[dict[str, Any]] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    readers: list[str] | None = None  # principals the answer was filtered by (None: unfiltered)
    generated: str = ""  # the model's own text, shown or not ("" when not asked or not kept)


class AnswerLog:
    """Appends answers and reads them back (by id, or the latest one a user got somewhere)."""

    def __init__(self, db: Database) -> None:
        self._engine = db.engine

    def record(self, answer: Answer) -> None:
        """Store `answer` (called by the conversation layer once per answer), with the
        principals retrieval was filtered by (`answer.readers`), kept for audits."""
        question = answer.question
        given = {passage.chunk_id for passage in answer.passages}
        with self._engine.begin() as connection:
            connection.execute(
                insert(answers_table).values(
                    id=answer.id,
                    platform=question.platform,
                    user_id=question.asker.user_id,
                    display_name=question.asker.display_name,
                    email=question.asker.email,
                    conversation_id=question.conversation_id,
                    thread_id=question.thread_id,
                    place=question.place,
                    question=question.text,
                    answer=answer.text,
                    generated=answer.generated,
                    confident=answer.confident,
                    citations=[
                        {
                            "number": c.number,
                            "source": c.source,
                            "title": c.title,
                            "heading": c.heading,
                            "url": c.url,
                        }
                        for c in answer.citations
                    ],
                    evidence=[
                        {"source": e.source, "quote": e.quote, "title": e.title, "url": e.url} for e in answer.evidence
                    ],
                    passages=[_passage_record(p, p.chunk_id in given) for p in (answer.retrieved or answer.passages)],
                    model=answer.model,
                    adapter=answer.adapter,
                    timings=dict(answer.timings),
                    readers=sorted(answer.readers) if answer.readers is not None else None,
                    created_at=datetime.now(UTC),
                )
            )

    def get(self, answer_id: str) -> StoredAnswer | None:
        """The answer with id `answer_id`, or None when unknown (or purged)."""
        query = select(answers_table).where(answers_table.c.id == answer_id)
        with self._engine.connect() as connection:
            row = connection.execute(query).mappings().first()
        return _from_row(row) if row is not None else None

    def latest_for(self, user_id: str, conversation_id: str | None) -> StoredAnswer | None:
        """The newest answer `user_id` received in `conversation_id` (anywhere when None)."""
        table = answers_table
        query = select(table).where(table.c.user_id == user_id)
        if conversation_id is not None:
            query = query.where(table.c.conversation_id == conversation_id)
        query = query.order_by(table.c.created_at.desc()).limit(1)
        with self._engine.connect() as connection:
            row = connection.execute(query).mappings().first()
        return _from_row(row) if row is not None else None

    def recent(self, limit: int = 100) -> list[StoredAnswer]:
        """The newest answers first."""
        query = select(answers_table).order_by(answers_table.c.created_at.desc()).limit(limit)
        with self._engine.connect() as connection:
            rows = connection.execute(query).mappings().all()
        return [_from_row(row) for row in rows]

    def purge_older_than(self, days: float) -> int:
        """Delete answers older than `days` (the retention setting); returns how many went."""
        cutoff = datetime.now(UTC) - timedelta(days=days)
        with self._engine.begin() as connection:
            result = connection.execute(delete(answers_table).where(answers_table.c.created_at < cutoff))
        return int(result.rowcount or 0)


def _passage_record(passage: Passage, given: bool) -> dict[str, Any]:
    return {
        "chunk_id": passage.chunk_id,
        "source": passage.source,
        "path": passage.path,
        "title": passage.title,
        "heading": passage.heading,
        "score": passage.score,
        "principals": sorted(passage.principals),
        # In `Answer.passages`: given to the model, or quoted beyond the prompt's budget. The
        # name predates the latter; sharing checks and training use exactly these passages.
        "given_to_model": given,
    }


def _from_row(row: Any) -> StoredAnswer:
    values = dict(row)
    created_at = as_utc(values["created_at"])
    return StoredAnswer(
        id=values["id"],
        platform=values["platform"],
        user_id=values["user_id"],
        conversation_id=values["conversation_id"],
        thread_id=values["thread_id"],
        question=values["question"],
        answer=values["answer"],
        citations=list(values["citations"]),
        model=values["model"],
        adapter=values["adapter"],
        created_at=created_at,
        confident=bool(values["confident"]),
        evidence=list(values["evidence"]),
        passages=list(values["passages"]),
        timings=dict(values["timings"]),
        readers=list(values["readers"]) if values.get("readers") is not None else None,
        generated=values.get("generated") or "",
    )
