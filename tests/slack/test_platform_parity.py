"""The same scripted conversation through the Slack adapter, the Teams adapter and the core
agent directly gives the same answers and citations: the adapters only translate.

It lives beside the Slack tests to share their session stack (indexed sample docs + tiny
model); the Teams side runs on that same stack through `/api/messages`."""

from __future__ import annotations

import uuid

import pytest

from bot.adapters.slack.rendering import ACTION_HELPFUL
from bot.app import Services
from bot.conversation.memory import answer_and_remember
from bot.core.types import Asker, Question
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
            lambda: (lambda found: found if len(found) >= number else None)(
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
        answer = answer_and_remember(services.agent, services.memory,
            Question(text=text, asker=asker, conversation_id=thread, thread_id=thread)
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
async def test_both_adapters_give_the_core_agents_answers_and_citations(
    platform: str, rig: SlackRig
) -> None:
    turns = await (_slack_turns(rig) if platform == "slack" else _teams_turns(rig.services))

    expected = _direct_turns(rig.services)
    assert turns == expected
    assert all(sources for _, sources in turns), "the sample docs cover both questions"
