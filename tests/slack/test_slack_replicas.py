"""Two `lore serve` replicas on one PostgreSQL database (#18): Slack delivers an event to one
and its retry (X-Slack-Retry-Num) to the other, and the question is answered once. Each
replica is its own web app on its own loopback port with its own database engine; they share
the indexed knowledge base and the model, which are the same on every replica."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable, Iterator

import pytest

from bot.app import Services
from bot.server import WORKLOAD
from bot.store.answers import AnswerLog
from bot.store.database import Database
from bot.store.feedback import FeedbackStore
from bot.store.sent_messages import SentMessages
from bot.store.threads import ThreadMemory
from tests.slack.conftest import SlackRig, fresh_id
from tests.slack.test_slack_conversations import QUESTIONS, is_final
from tests.support.postgres import fresh_database, postgres_url  # noqa: F401  (fixture)
from tests.support.slack_api import mention

pytestmark = pytest.mark.postgres


@pytest.fixture
def shared_url(postgres_url: str) -> Iterator[str]:  # noqa: F811
    with fresh_database(postgres_url) as url:
        yield url


def replica(stack: Services, url: str) -> Services:
    """`stack` answering from its own engine on the shared database."""
    database = Database(url)
    settings = stack.settings.model_copy(update={"database_url": url})
    return dataclasses.replace(
        stack,
        settings=settings,
        database=database,
        answers=AnswerLog(database),
        threads=ThreadMemory(database, max_turns=settings.agent.history_turns),
        feedback=FeedbackStore(database),
        sent_messages=SentMessages(database),
    )


async def test_a_retry_on_another_replica_is_not_answered_again(
    stack: Services, shared_url: str, start_rig: Callable[..., Awaitable[SlackRig]]
) -> None:
    replicas = [replica(stack, shared_url), replica(stack, shared_url)]
    try:
        assert all(services.shares_database for services in replicas)
        first, second = [await start_rig(services=services) for services in replicas]
        channel, user = fresh_id("C"), fresh_id("U")
        event = mention(QUESTIONS[0], user, channel)

        # Slack's first delivery and its retry, at once, to the two replicas.
        replies = await asyncio.gather(
            first.sender.event(event, event_id="EvREPLICA"),
            second.sender.event(event, event_id="EvREPLICA", retry=1),
        )
        assert [reply.status for reply in replies] == [200, 200]

        def final_anywhere() -> bool:
            return any(is_final(m) for rig in (first, second) for m in rig.api.thread(channel, event["ts"]))

        await first.api.wait_until(final_anywhere, 60.0)
        await asyncio.sleep(0.5)
        for rig in (first, second):
            await rig.api.wait_until(lambda rig=rig: rig.app[WORKLOAD].depth == 0)

        posted = [len(rig.api.calls_to("chat.postMessage")) for rig in (first, second)]
        assert sorted(posted) == [0, 1], posted
        assert len([a for a in replicas[0].answers.recent(1000) if a.user_id == user]) == 1
    finally:
        for services in replicas:
            if "conversation" in services.__dict__:
                services.conversation.close()
            services.database.close()


async def test_a_rate_limit_holds_across_replicas(
    stack: Services, shared_url: str, start_rig: Callable[..., Awaitable[SlackRig]]
) -> None:
    replicas = [replica(stack, shared_url), replica(stack, shared_url)]
    try:
        limit = stack.settings.slack.rate_limit_per_minute
        user = fresh_id("U")
        admitted = [
            replicas[n % 2].conversation.admit("slack", user) is None for n in range(limit + 2)
        ]  # alternating replicas
        assert admitted == [True] * limit + [False, False]
    finally:
        for services in replicas:
            if "conversation" in services.__dict__:
                services.conversation.close()
            services.database.close()
