"""`Services.purge_expired` also forgets the messages the platforms posted (the Slack threads the
bot answered in, the Teams messages that showed an answer), past the answer log's retention."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import update

from bot.store.sent_messages import SentMessage, SentMessages
from bot.store.tables import sent_messages
from tests.support.stack import build_test_services


def test_purge_expired_forgets_both_platforms_sent_messages_past_the_answer_retention(tmp_path: Path) -> None:
    services = build_test_services(tmp_path)
    try:
        sent = services.sent_messages
        sent.remember(SentMessage("slack", "C1", "1.0", thread_id="1.0"))
        sent.remember(SentMessage("teams", "19:a", "m-1", answer_id="x"))
        old = datetime.now(UTC) - timedelta(days=services.settings.agent.answer_retention_days + 1)
        with services.database.engine.begin() as connection:
            connection.execute(update(sent_messages).values(sent_at=old))
        sent.remember(SentMessage("slack", "C1", "2.0", thread_id="2.0"))
        sent.remember(SentMessage("teams", "19:a", "m-2", answer_id="y"))

        assert services.purge_expired() == 2
        reopened = SentMessages(services.database)
        assert not reopened.posted_in_thread("slack", "C1", "1.0") and reopened.posted_in_thread("slack", "C1", "2.0")
        assert reopened.answer_id("teams", "19:a", "m-1") is None and reopened.answer_id("teams", "19:a", "m-2") == "y"
    finally:
        services.close()
