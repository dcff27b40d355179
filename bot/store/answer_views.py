"""The trail of who read which private answer in the admin console, and when."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import insert, select

from bot.store.database import Database, as_utc
from bot.store.tables import private_answer_views


@dataclass(frozen=True)
class AnswerView:
    answer_id: str
    viewer: str
    viewed_at: datetime


class AnswerViews:
    """Appends a row per view of a private answer; reads them back newest first."""

    def __init__(self, db: Database) -> None:
        self._engine = db.engine

    def record(self, answer_id: str, viewer: str) -> None:
        with self._engine.begin() as connection:
            connection.execute(
                insert(private_answer_views).values(answer_id=answer_id, viewer=viewer, viewed_at=datetime.now(UTC))
            )

    def recent(self, limit: int = 100) -> list[AnswerView]:
        table = private_answer_views
        query = select(table).order_by(table.c.viewed_at.desc(), table.c.id.desc()).limit(limit)
        with self._engine.connect() as connection:
            rows = connection.execute(query).mappings().all()
        return [AnswerView(row["answer_id"], row["viewer"], as_utc(row["viewed_at"])) for row in rows]
