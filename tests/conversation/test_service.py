"""The conversation service on its own: back-pressure, failures and what it records."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.conversation.memory import ConversationMemory
from bot.conversation.service import BUSY_TEXT, ConversationService, Notice
from bot.core.agent import Agent
from bot.settings import AgentSettings
from bot.store.answers import AnswerLog
from bot.store.database import Database
from bot.store.feedback import FeedbackStore
from bot.store.threads import ThreadMemory
from bot.types import Answer, Asker, Question
from knowledge.config import RetrievalSettings
from tests.core.doubles import ListRetriever, ScriptedModel
from tests.core.passages import VACATION


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Database]:
    db = Database(f"sqlite:///{tmp_path / 'lore.db'}")
    yield db
    db.close()


class GatedAgent:
    """The real agent, holding every answer until `gate` opens."""

    def __init__(self, agent: Agent) -> None:
        self.agent = agent
        self.gate = threading.Event()
        self.asked = 0

    def answer(self, question: Question, history: object, on_text: object = None, on_draft: object = None) -> Answer:
        self.asked += 1
        self.gate.wait(timeout=30)
        return self.agent.answer(question, [])


def service(database: Database, agent: object, **options: int) -> ConversationService:
    memory = ConversationMemory(AnswerLog(database), ThreadMemory(database))
    return ConversationService(agent, memory, FeedbackStore(database), {"slack": 10}, **options)  # type: ignore[arg-type]  # a stand-in agent


def question(thread: str) -> Question:
    return Question("Are contractors eligible for vacation?", Asker("U1"), "C1", thread, platform="slack")


async def test_a_full_queue_gets_the_busy_text_without_reaching_the_agent(database: Database) -> None:
    real = Agent(ListRetriever([VACATION]), ScriptedModel("No [1]."), AgentSettings(), RetrievalSettings(k=5))
    gated = GatedAgent(real)
    conversation = service(database, gated, workers=1, max_waiting=1)
    try:
        first = asyncio.create_task(conversation.ask(question("T1")))
        second = asyncio.create_task(conversation.ask(question("T2")))
        await asyncio.sleep(0.1)
        assert await conversation.ask(question("T3")) == Notice(BUSY_TEXT)  # two in hand: full
        gated.gate.set()
        answers = await asyncio.gather(first, second)
        assert all(isinstance(answer, Answer) for answer in answers) and gated.asked == 2
        # Recorded and remembered by the service, not the agent.
        assert all(conversation.memory.answers.get(answer.id) is not None for answer in answers)
        assert conversation.memory.history(question("T1"))[0].question == question("T1").text
    finally:
        conversation.close()


class FailingAgent:
    def answer(self, question: Question, history: object, on_text: object = None, on_draft: object = None) -> Answer:
        raise RuntimeError("CUDA out of memory")


async def test_a_failure_gives_an_apology_whose_error_id_is_logged_with_the_cause(
    database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    conversation = service(database, FailingAgent())
    try:
        with caplog.at_level(logging.ERROR):
            notice = await conversation.ask(question("T1"))
    finally:
        conversation.close()
    assert isinstance(notice, Notice) and notice.error_id and f"`{notice.error_id}`" in notice.text
    assert "CUDA" not in notice.text
    (record,) = [r for r in caplog.records if notice.error_id in r.getMessage()]
    assert record.exc_info is not None and "CUDA" in str(record.exc_info[1])


def test_the_rate_limit_is_per_platform_and_user(database: Database) -> None:
    conversation = service(database, FailingAgent())
    try:
        assert all(conversation.admit("slack", "U1") is None for _ in range(10))
        slow_down = conversation.admit("slack", "U1")
        assert slow_down is not None and "faster than I can keep up" in slow_down.text
        assert conversation.admit("slack", "U2") is None
        assert conversation.admit("cli", "U1") is None  # not limited
    finally:
        conversation.close()
