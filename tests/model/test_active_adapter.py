"""`lore serve`'s model follows promotions and rollbacks made by other processes: the next
answer comes from the adapter the registry's ACTIVE marker names, and says so in the answer
and the answer log. The services are `lore serve`'s own (`serving_services`), over an indexed
share and the tiny model; the promotions go through the promotion API on a registry object of
their own, writing only the files another process would write."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.app import Services
from bot.cli.serve_command import serving_services
from bot.conversation.memory import answer_and_remember
from bot.customize.promotion import promote, rollback, store_evaluation
from bot.model.active_adapter import FollowActiveAdapter, follow_promotions
from bot.model.adapters import AdapterRegistry
from bot.model.openai_backend import OpenAIModel
from bot.settings import LoreSettings, ModelSettings
from bot.types import Asker, Question
from knowledge.config import FolderSourceSettings
from tests.customize.conftest import write_share
from tests.support.tiny_model import build_tiny_adapter, build_tiny_model

# The FAQ answers it word for word: the agent finds it covered and the model generates.
QUESTION = "When is payday?"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("models") / "tiny")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, tiny: Path) -> Iterator[Services]:
    root = tmp_path_factory.mktemp("serve")
    settings = LoreSettings(
        home=root / "home",
        sources=[FolderSourceSettings(name="handbook", path=write_share(root / "docs"), permissions="file-modes")],
        model=ModelSettings(base_model=tiny, max_new_tokens=4),
    )
    services = serving_services(settings)
    services.knowledge.refresh()
    yield services
    services.close()


@pytest.fixture(scope="module")
def adapters(served: Services, tiny: Path) -> AdapterRegistry:
    """Another process's view of the bot's adapters folder: two evaluated adapters, v2 the better."""
    registry = AdapterRegistry(served.settings.adapters_dir)
    for number, name in enumerate(("v1", "v2"), start=1):
        metadata = {"base_model": str(tiny), "created": f"2026-11-0{number}T10:00:00+00:00"}
        build_tiny_adapter(tiny, registry.directory / name, seed=number, metadata=metadata)
        store_evaluation(
            registry, name, {"base": {"answer_accuracy": 0.2}, "adapter": {"answer_accuracy": 0.2 + number / 10}}
        )
    build_tiny_adapter(tiny, registry.directory / "alien", metadata={"base_model": "SmolLM2-1.7B-Instruct"})
    return registry


@pytest.fixture
def registry(served: Services, adapters: AdapterRegistry) -> Iterator[AdapterRegistry]:
    """The registry with the base model promoted, and the bot answering with it."""
    (adapters.directory / "promotions.json").unlink(missing_ok=True)
    adapters.set_active(None)
    ask(served)
    assert served.model.adapter is None
    yield adapters


def ask(services: Services) -> str | None:
    """Ask the bot; the adapter its answer and the answer log report (which must agree)."""
    answer = answer_and_remember(
        services.agent, services.memory, Question(QUESTION, Asker("U1"), "C1", uuid.uuid4().hex)
    )
    assert answer.confident  # the model wrote it (an uncovered question never reaches the model)
    stored = services.answers.get(answer.id)
    assert stored is not None and stored.adapter == answer.adapter
    return answer.adapter


def test_answers_follow_promotions_and_rollbacks(served: Services, registry: AdapterRegistry) -> None:
    assert isinstance(served.model, FollowActiveAdapter)
    assert ask(served) is None

    promote(registry, "v1")
    assert ask(served) == "v1"
    promote(registry, "v2")
    assert ask(served) == "v2"

    assert rollback(registry) == "v1"
    assert ask(served) == "v1"
    assert rollback(registry) is None
    assert ask(served) is None


def test_two_promotions_between_answers_end_on_the_last(served: Services, registry: AdapterRegistry) -> None:
    promote(registry, "v1")
    promote(registry, "v2")  # within the same file time-stamp tick, most likely
    assert ask(served) == "v2"


def test_an_adapter_chosen_explicitly_holds_until_the_next_promotion(
    served: Services, registry: AdapterRegistry
) -> None:
    served.model.use_adapter("v2")  # as `lore customize eval` does to measure one
    assert ask(served) == "v2"
    assert ask(served) == "v2"
    promote(registry, "v1")
    assert ask(served) == "v1"


def test_a_promotion_that_cannot_be_applied_keeps_the_bot_answering(
    served: Services, registry: AdapterRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    promote(registry, "v1")
    assert ask(served) == "v1"
    caplog.set_level(logging.ERROR, logger="bot.model.active_adapter")
    promote(registry, "alien", force=True)  # trained on another base model
    assert ask(served) == "v1"
    assert ask(served) == "v1"
    errors = [
        r.getMessage() for r in caplog.records if r.name == "bot.model.active_adapter" and r.levelno == logging.ERROR
    ]
    assert len(errors) == 1, errors  # said once, not at every answer
    assert "'alien'" in errors[0] and "still answering with v1" in errors[0]

    assert rollback(registry) == "v1"  # the next change of the marker is followed again
    promote(registry, "v2")
    assert ask(served) == "v2"


def test_a_pinned_adapter_and_the_openai_backend_do_not_follow(
    served: Services, adapters: AdapterRegistry, tiny: Path
) -> None:
    local = served.model
    pinned = follow_promotions(local, ModelSettings(base_model=tiny, adapter="v1"), adapters)
    assert pinned is local  # model.adapter decides, not the marker
    endpoint = OpenAIModel("http://127.0.0.1:9/v1", "lore")
    assert follow_promotions(endpoint, ModelSettings(backend="openai"), adapters) is endpoint
    assert isinstance(follow_promotions(endpoint, ModelSettings(), adapters), FollowActiveAdapter)
