"""`Services.purge_expired` also forgets what the platform adapters keep per answer: the Slack
threads the bot answered in and the Teams messages it sent, past the answer log's retention."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aiohttp import web
from pydantic import SecretStr
from sqlalchemy import insert

from bot.platforms.slack.app import build_slack_bot
from bot.platforms.teams.routes import teams_routes
from bot.server import Workload
from bot.settings import SlackSettings
from bot.store.slack_threads import AnsweredThreads, slack_threads
from bot.store.teams_sent_answers import SentAnswers, teams_sent_answers
from tests.support.stack import build_test_services


def test_purge_expired_runs_the_mounted_adapters_purges(tmp_path: Path) -> None:
    services = build_test_services(tmp_path)
    slack = SlackSettings(bot_token=SecretStr("xoxb-test"), signing_secret=SecretStr("secret"))
    services = dataclasses.replace(services, settings=services.settings.model_copy(update={"slack": slack}))
    try:
        build_slack_bot(services, Workload())
        teams_routes(services)(web.Application())
        assert len(services.housekeeping) == 2

        old = datetime.now(UTC) - timedelta(days=services.settings.agent.answer_retention_days + 1)
        with services.database.engine.begin() as connection:
            connection.execute(insert(slack_threads).values(channel_id="C1", thread_ts="1.0", answered_at=old))
            connection.execute(
                insert(teams_sent_answers).values(conversation_id="19:a", activity_id="m-1", answer_id="x", sent_at=old)
            )
        AnsweredThreads(services.database).remember("C1", "2.0")
        SentAnswers(services.database).remember("19:a", "m-2", "y")

        assert services.purge_expired() == 2
        threads = AnsweredThreads(services.database)
        assert not threads.contains("C1", "1.0") and threads.contains("C1", "2.0")
        sent = SentAnswers(services.database)
        assert sent.answer_id("19:a", "m-1") is None and sent.answer_id("19:a", "m-2") == "y"
    finally:
        services.close()
