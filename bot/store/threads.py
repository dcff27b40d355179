"""Thread memory: the earlier turns of a conversation thread, so follow-up questions see them.
Bounded: only the newest `max_turns` turns of each thread are kept."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, insert, select

from bot.store.database import Database
from bot.store.tables import thread_turns
from bot.types import Turn


class ThreadMemory:
    """Keeps the newest `max_turns` turns of every thread, oldest first when read."""

    def __init__(self, db: Database, max_turns: int = 6) -> None:
        if max_turns < 1:
            raise ValueError("max_turns must be at least 1")
        self._engine = db.engine
        self.max_turns = max_turns

    def history(self, platform: str, conversation_id: str, thread_id: str) -> list[Turn]:
        """The thread's stored turns, oldest first."""
        table = thread_turns
        query = (
            select(table)
            .where(
                table.c.platform == platform,
                table.c.conversation_id == conversation_id,
                table.c.thread_id == thread_id,
            )
            .order_by(table.c.id.desc())
            .limit(self.max_turns)
        )
        with self._engine.connect() as connection:
            rows = connection.execute(query).mappings().all()
        return [Turn(row["user_id"], row["question"], row["answer"], tuple(row["sources"])) for row in reversed(rows)]

    def append(self, platform: str, conversation_id: str, thread_id: str, turn: Turn) -> None:
        """Add `turn` to the thread and forget the turns beyond `max_turns`."""
        table = thread_turns
        where = (
            table.c.platform == platform,
            table.c.conversation_id == conversation_id,
            table.c.thread_id == thread_id,
        )
        with self._engine.begin() as connection:
            connection.execute(
                insert(table).values(
                    platform=platform,
                    conversation_id=conversation_id,
                    thread_id=thread_id,
                    user_id=turn.user_id,
                    question=turn.question,
                    answer=turn.answer,
                    sources=list(turn.sources),
                    created_at=datetime.now(UTC),
                )
            )
            keep = select(table.c.id).where(*where).order_by(table.c.id.desc()).limit(self.max_turns)
            kept = [row[0] for row in connection.execute(keep)]
            connection.execute(delete(table).where(*where, table.c.id.not_in(kept)))

    def purge_older_than(self, days: float) -> int:
        """Forget turns older than `days`; returns how many went."""
        cutoff = datetime.now(UTC) - timedelta(days=days)
        with self._engine.begin() as connection:
            result = connection.execute(delete(thread_turns).where(thread_turns.c.created_at < cutoff))
        return int(result.rowcount or 0)
