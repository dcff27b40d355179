"""Training the tiny random model for a few steps on a dataset from the tiny share."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from bot.customize.dataset import DatasetCard, DatasetOptions, build_dataset
from bot.customize.training import (
    StepReport,
    TrainingError,
    TrainingSettings,
    train_adapter,
)
from bot.model.adapters import AdapterRegistry
from bot.model.base import ChatMessage, GenerationSettings
from bot.model.local import LocalModel
from bot.model.tokens import estimate_tokens
from bot.model.weights import base_model_fingerprint
from tests.customize.conftest import Share
from tests.support.tiny_model import build_tiny_model

# Short prompts (one or two passages) keep a step to a fraction of a second on a busy CPU.
FAST = TrainingSettings(
    rank=4, alpha=16, dropout=0.05, learning_rate=0.05, warmup_steps=0, gradient_accumulation=2,
    max_steps=4, checkpoint_every=2, max_validation_examples=2, max_length=512,
)


class Interrupted(Exception):
    pass


@pytest.fixture(scope="module")
def dataset(share: Share, tmp_path_factory: pytest.TempPathFactory) -> DatasetCard:
    return build_dataset(
        share.knowledge,
        tmp_path_factory.mktemp("datasets"),
        retrieval=share.retrieval,
        persona="You are Lore.",
        glossary=None,
        count_tokens=estimate_tokens,
        options=DatasetOptions(max_prompt_tokens=160),
    )


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


def test_trained_adapter_loads_and_changes_the_output(dataset: DatasetCard, base: Path, tmp_path: Path) -> None:
    registry = AdapterRegistry(tmp_path / "adapters")
    steps: list[StepReport] = []
    result = train_adapter(dataset.folder, base, "tiny", registry, tmp_path / "runs", FAST, name="first", on_step=steps.append)
    assert registry.list() == ["first"] and result.path == registry.path("first")
    assert [s.step for s in steps] == [1, 2, 3, 4] and steps[1].validation_loss is not None
    metadata = json.loads((result.path / "lore.json").read_text(encoding="utf-8"))
    assert metadata["base_model"] == "tiny"
    assert metadata["base_model_hash"] == base_model_fingerprint(base)
    assert metadata["dataset"]["hash"] == dataset.hash
    assert metadata["hyperparameters"]["rank"] == 4 and metadata["metrics"]["steps"] == 4
    assert metadata["metrics"]["validation_loss"] == pytest.approx(min(loss for _, loss in metadata["validation_curve"]), abs=1e-4)

    prompt = [ChatMessage("user", "When is payday?")]
    settings = GenerationSettings(max_new_tokens=16)
    with LocalModel(base, adapters=registry) as model:
        plain = model.generate(prompt, settings)
        model.use_adapter("first")
        tuned = model.generate(prompt, settings)
    assert plain != tuned


def test_resume_continues_from_the_last_checkpoint(dataset: DatasetCard, base: Path, tmp_path: Path) -> None:
    settings = replace(FAST, gradient_accumulation=1)
    straight = train_adapter(dataset.folder, base, "tiny", AdapterRegistry(tmp_path / "a"), tmp_path / "runs-a", settings)

    def stop_at_three(report: StepReport) -> None:
        if report.step == 3:
            raise Interrupted

    registry = AdapterRegistry(tmp_path / "b")
    with pytest.raises(Interrupted):
        train_adapter(dataset.folder, base, "tiny", registry, tmp_path / "runs-b", settings, on_step=stop_at_three)
    assert registry.list() == []  # nothing half-made is published
    resumed = train_adapter(dataset.folder, base, "tiny", registry, tmp_path / "runs-b", settings, resume=True)
    assert resumed.resumed_from == 2 and resumed.steps == 4
    # The same data order, weights, optimizer and random state: the same losses as one straight run.
    resumed_losses = [loss for _, loss in resumed.metadata["loss_curve"]]
    assert resumed_losses == pytest.approx([loss for _, loss in straight.metadata["loss_curve"]], abs=1e-4)
    with pytest.raises(TrainingError, match="already finished"):
        train_adapter(dataset.folder, base, "tiny", registry, tmp_path / "runs-b", settings, resume=True)
