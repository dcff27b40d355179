"""The map from sent Teams messages to answers, on a real SQLite database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import update

from bot.store.database import Database
from bot.store.teams_sent_answers import SentAnswers, teams_sent_answers


def test_remember_look_up_and_purge(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'lore.db'}")
    try:
        sent = SentAnswers(db)
        sent.remember("19:chan", "m-1", "answer-1")
        sent.remember("19:chan", "m-2", "answer-2")
        sent.remember("a:dm", "m-1", "answer-3")  # ids are per conversation
        assert sent.answer_id("19:chan", "m-1") == "answer-1"
        assert sent.answer_id("a:dm", "m-1") == "answer-3"
        assert sent.answer_id("19:chan", "m-9") is None

        old = datetime.now(UTC) - timedelta(days=100)
        with db.engine.begin() as connection:
            connection.execute(
                update(teams_sent_answers).where(teams_sent_answers.c.activity_id == "m-2").values(sent_at=old)
            )
        assert sent.purge_older_than(90) == 1
        assert sent.answer_id("19:chan", "m-2") is None
        assert SentAnswers(db).answer_id("19:chan", "m-1") == "answer-1"  # survives a restart
    finally:
        db.close()
