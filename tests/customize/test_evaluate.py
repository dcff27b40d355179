"""Measuring an adapter (`lore customize eval`, the retraining job) asks the live agent its test
questions: none of them may reach the answer log or thread memory."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select

from bot.app import Services
from bot.conversation.memory import answer_and_remember
from bot.core.evaluation import EvalQuestion
from bot.customize.evaluate import compare
from bot.store.answers import answers_table
from bot.store.threads import thread_turns
from bot.types import Asker, Question
from tests.support.stack import build_test_services


def test_measuring_an_adapter_leaves_the_answer_log_and_thread_memory_untouched(tmp_path: Path) -> None:
    services = build_test_services(tmp_path)
    try:
        asked = Question("What is the VPN called?", Asker("U1"), "C1", "t-user", platform="slack")
        answer_and_remember(services.agent, services.memory, asked)  # a real user's turn stays
        before = _logged(services)
        questions = [EvalQuestion("What is the VPN called?", "policies/it-and-security.md")]
        reports = compare(services.agent, None, questions)
        assert reports["base"].count == reports["adapter"].count == 1
        assert _logged(services) == before == (1, 1)
    finally:
        services.close()


def _logged(services: Services) -> tuple[int, int]:
    """Rows in the answer log and in thread memory."""
    with services.database.engine.connect() as connection:
        return (
            connection.execute(select(func.count()).select_from(answers_table)).scalar_one(),
            connection.execute(select(func.count()).select_from(thread_turns)).scalar_one(),
        )
