"""The Gaps page: questions Lore could not answer ("not covered") or whose answer was rated
not helpful, grouped by meaning with the index's own embedder, biggest group first: the
documents the company should write. Answers given in private conversations are left out."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import Engine, or_, select

from bot.console.answer_search import PRIVATE
from bot.store.tables import answers_table, feedback_table
from knowledge.embeddings import Embedder

MAX_QUESTIONS = 400  # the newest ones; each is embedded once per process
SIMILARITY = 0.6  # cosine similarity to a group's first question to join it (MiniLM)
SHOWN_PER_GROUP = 5


@dataclass(frozen=True)
class GapQuestion:
    answer_id: str
    question: str
    not_covered: bool  # else: rated not helpful
    asked_at: datetime


def gap_questions(engine: Engine, since: datetime, limit: int = MAX_QUESTIONS) -> list[GapQuestion]:
    """The newest questions since `since` answered "not covered" or rated not helpful."""
    table = answers_table
    disliked = select(feedback_table.c.answer_id).where(feedback_table.c.rating == "not_helpful")
    query = (
        select(table.c.id, table.c.question, table.c.confident, table.c.created_at)
        .where(table.c.created_at >= since, table.c.place != PRIVATE)
        .where(or_(table.c.confident.is_(False), table.c.id.in_(disliked)))
        .order_by(table.c.created_at.desc())
        .limit(limit)
    )
    with engine.connect() as connection:
        return [
            GapQuestion(row.id, row.question, not row.confident, row.created_at) for row in connection.execute(query)
        ]


class GapGroups:
    """Groups gap questions by meaning; remembers each question's vector between page loads."""

    def __init__(self, embedder: Embedder, similarity: float = SIMILARITY) -> None:
        self._embedder = embedder
        self._similarity = similarity
        self._vectors: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()

    def groups(self, questions: list[GapQuestion]) -> list[dict[str, Any]]:
        """Groups, largest first: count, not covered / not helpful counts, a few questions."""
        vectors = self._vectors_of(questions)
        leaders: list[np.ndarray] = []
        members: list[list[GapQuestion]] = []
        for question in reversed(questions):  # oldest first: a group is named by its first question
            vector = vectors[question.answer_id]
            if leaders:
                scores = np.stack(leaders) @ vector
                best = int(np.argmax(scores))
                if scores[best] >= self._similarity:
                    members[best].append(question)
                    continue
            leaders.append(vector)
            members.append([question])
        ordered = sorted(members, key=lambda group: (-len(group), group[0].question))
        return [
            {
                "count": len(group),
                "not_covered": sum(q.not_covered for q in group),
                "not_helpful": sum(not q.not_covered for q in group),
                "example": group[0].question,
                "questions": [{"answer_id": q.answer_id, "question": q.question} for q in group[:SHOWN_PER_GROUP]],
            }
            for group in ordered
        ]

    def _vectors_of(self, questions: list[GapQuestion]) -> dict[str, np.ndarray]:
        with self._lock:
            missing = [q for q in questions if q.answer_id not in self._vectors]
            if missing:
                embedded = self._embedder.embed_documents([q.question for q in missing])
                self._vectors.update({q.answer_id: row for q, row in zip(missing, embedded, strict=True)})
            wanted = {q.answer_id for q in questions}
            # Only what the page still shows stays in memory.
            self._vectors = {key: value for key, value in self._vectors.items() if key in wanted}
            return dict(self._vectors)
