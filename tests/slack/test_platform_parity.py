"""The same scripted conversation through the Slack adapter, the Teams adapter and the core
agent directly gives the same answers and citations: the adapters only translate. A failure,
a busy model and a rate limit read the same on both platforms.

It lives beside the Slack tests to share their session stack (indexed sample docs + tiny
model); the Teams side runs on that same stack through `/api/messages`."""

from __future__ import annotations

import dataclasses
import html
import re
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from bot.app import Services
from bot.conversation.memory import answer_and_remember
from bot.errors import BusyError
from bot.platforms.slack.rendering import ACTION_HELPFUL
from bot.types import Asker, Question
from tests.slack.conftest import SlackRig, fresh_id
from tests.support.bot_connector import (
    ConnectorMock,
    TeamsConversation,
    TeamsUser,
    ask_via_teams,
    teams_test_client,
)
from tests.support.slack_api import message

SCRIPT = (
    "How many days of paid time off do employees get per year?",
    "and how many of them can I carry over?",  # a follow-up: needs the first turn
)

# What an answer is, for comparison: the text and the cited sources in order.
Turn = tuple[str, tuple[str, ...]]


async def _slack_turns(rig: SlackRig) -> list[Turn]:
    dm, user = fresh_id("D"), fresh_id("U")
    turns: list[Turn] = []
    for number, text in enumerate(SCRIPT, start=1):
        await rig.sender.event(message(text, user, dm, "im"))
        finals = await rig.api.wait_until(
            lambda number=number: (lambda found: found if len(found) >= number else None)(
                [m for m in rig.api.thread(dm, None) if _answer_id(m)]
            ),
            timeout=120,
        )
        stored = rig.services.answers.get(_answer_id(finals[number - 1]))
        assert stored is not None and stored.question == text
        turns.append((stored.answer, tuple(c["source"] for c in stored.citations)))
    return turns


async def _teams_turns(services: Services) -> list[Turn]:
    user = TeamsUser(id=f"29:{uuid.uuid4().hex}", aad_object_id=uuid.uuid4().hex)
    chat = TeamsConversation(id=f"a:{uuid.uuid4().hex}", scope="personal")
    turns: list[Turn] = []
    async with ConnectorMock() as connector:
        client = await teams_test_client(services)
        try:
            for text in SCRIPT:
                turn = await ask_via_teams(client, connector, text, user, chat)
                stored = services.answers.get(turn.answer_id or "")
                assert stored is not None and stored.question == text
                turns.append((stored.answer, tuple(c["source"] for c in stored.citations)))
        finally:
            await client.close()
    return turns


def _direct_turns(services: Services) -> list[Turn]:
    """The core agent asked directly, in a fresh private thread of its own."""
    thread = f"direct-{uuid.uuid4().hex}"
    asker = Asker(user_id=f"U{uuid.uuid4().hex}")
    turns: list[Turn] = []
    for text in SCRIPT:
        answer = answer_and_remember(
            services.agent, services.memory, Question(text=text, asker=asker, conversation_id=thread, thread_id=thread)
        )
        turns.append((answer.text, tuple(c.source for c in answer.citations)))
    return turns


def _answer_id(slack_message: object) -> str | None:
    for block in getattr(slack_message, "blocks", []):
        for element in block.get("elements", []) if block["type"] == "actions" else []:
            if element.get("action_id") == ACTION_HELPFUL:
                return element["value"]
    return None


@pytest.mark.parametrize("platform", ["slack", "teams"])
async def test_both_adapters_give_the_core_agents_answers_and_citations(platform: str, rig: SlackRig) -> None:
    turns = await (_slack_turns(rig) if platform == "slack" else _teams_turns(rig.services))

    expected = _direct_turns(rig.services)
    assert turns == expected
    assert all(sources for _, sources in turns), "the sample docs cover both questions"


class FailingAgent:
    """An agent whose every answer fails with `error`."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def answer(self, question: object, history: object, on_text: object = None, on_draft: object = None) -> object:
        raise self.error


def _same(text: str) -> str:
    """`text` with its error id (different on every failure) blanked out."""
    return re.sub(r"`\w+`", "`ID`", text)


async def _slack_notice(
    start_rig: Callable[..., Awaitable[SlackRig]], services: Services, asked: int, **slack: Any
) -> str:
    rig = await start_rig(services=services, **slack)
    dm, user = fresh_id("D"), fresh_id("U")
    for text in SCRIPT[:asked]:
        await rig.sender.event(message(text, user, dm, "im"))
    notice = await rig.api.wait_until(
        lambda: next((m for m in rig.api.thread(dm, None) if any(w in m.text for w in NOTICE_WORDS)), None),
        timeout=120,
    )
    return notice.text


async def _teams_notice(services: Services, asked: int, **teams: Any) -> str:
    settings = services.settings.model_copy(update={"teams": services.settings.teams.model_copy(update=teams)})
    services = dataclasses.replace(services, settings=settings)
    user = TeamsUser(id=f"29:{uuid.uuid4().hex}", aad_object_id=uuid.uuid4().hex)
    chat = TeamsConversation(id=f"a:{uuid.uuid4().hex}", scope="personal")
    async with ConnectorMock() as connector:
        client = await teams_test_client(services)
        try:
            turns = [await ask_via_teams(client, connector, text, user, chat) for text in SCRIPT[:asked]]
        finally:
            await client.close()
    return turns[-1].final.body["text"]


# Words that mark a notice (not an answer) in the replies.
NOTICE_WORDS = ("error id", "many questions", "faster than")


@pytest.mark.parametrize("case", ["failure", "busy", "rate limit"])
async def test_a_failure_a_busy_model_and_a_rate_limit_read_the_same_on_both_platforms(
    case: str, start_rig: Callable[..., Awaitable[SlackRig]], stack: Services
) -> None:
    if case == "rate limit":  # the second question within a minute is one too many
        services, asked, limit = stack, 2, {"rate_limit_per_minute": 1}
    else:
        error = RuntimeError("model exploded") if case == "failure" else BusyError("queue full")
        services, asked, limit = dataclasses.replace(stack, agent=FailingAgent(error)), 1, {}

    on_slack = await _slack_notice(start_rig, services, asked, **limit)
    on_teams = await _teams_notice(services, asked, **limit)

    assert _same(html.unescape(on_slack)) == _same(on_teams)
    assert any(word in on_teams for word in NOTICE_WORDS)
