"""The agent with the real bundled models (SmolLM2-135M-Instruct and MiniLM) on the sample
handbook. Slow: loading and generating take seconds to minutes on 2 CPU cores."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from bot.app import Services
from bot.cli.main import cli
from bot.conversation.memory import answer_and_remember
from bot.model import load_model
from bot.settings import ModelSettings
from bot.types import Asker, Question
from tests.support.stack import build_test_services

pytestmark = pytest.mark.slow

# The dequantized SmolLM2 weights are cached here across runs (as `lore` does under LORE_HOME).
MODEL_HOME = Path(tempfile.gettempdir()) / "lore-test-cache" / "smollm2-home"


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    model = load_model(ModelSettings(max_new_tokens=80), MODEL_HOME)
    built = build_test_services(tmp_path_factory.mktemp("real-model"), model=model, generate="always")
    yield built
    built.close()


def ask(services: Services, text: str, thread: str) -> object:
    return answer_and_remember(
        services.agent, services.memory, Question(text, Asker("U1", "Ada"), "C1", thread, platform="slack")
    )


def test_answer_cites_the_right_file(services: Services) -> None:
    answer = ask(services, "How many days of paid time off do full-time employees get?", "pto")
    assert answer.confident
    assert "people/time-off.md" in [c.source for c in answer.citations]
    assert "27" in answer.text or any("27 days" in e.quote for e in answer.evidence)
    assert answer.model == "SmolLM2-135M-Instruct"
    assert answer.timings["first_token"] < answer.timings["total"]


def test_off_topic_question_gets_the_not_covered_reply(services: Services) -> None:
    answer = ask(services, "Who won the football world cup in 1998?", "football")
    assert not answer.confident
    assert answer.text == services.settings.agent.fallback_text
    assert answer.citations == ()


def test_followup_in_a_thread_uses_the_earlier_turn(services: Services) -> None:
    ask(services, "What is the expenses tool called?", "follow")
    followup = ask(services, "And within how many days must I submit them?", "follow")
    assert followup.confident
    assert "policies/expenses-and-travel.md" in [c.source for c in followup.citations]
    # Alone, the follow-up says nothing about expenses: retrieval found them through the first turn.
    assert any("30 days" in p.text for p in followup.passages)


def test_ask_json_with_the_real_model(tmp_path: Path) -> None:
    env = {
        "LORE_CONFIG": str(tmp_path / "none.toml"),
        "LORE_HOME": str(MODEL_HOME),
        "LORE_MODEL__MAX_NEW_TOKENS": "60",
    }
    assert CliRunner().invoke(cli, ["index"], env=env).exit_code == 0
    result = CliRunner().invoke(cli, ["ask", "--json", "What is the VPN called?"], env=env)
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    assert answer["confident"] is True
    assert "policies/it-and-security.md" in [c["source"] for c in answer["citations"]]
    assert answer["model"] == "SmolLM2-135M-Instruct"
