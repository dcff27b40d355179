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
from knowledge.errors import ConfigurationError
from tests.customize.conftest import Share
from tests.support.tiny_model import build_tiny_model

# Short prompts (one or two passages) keep a step to a fraction of a second on a busy CPU.
FAST = TrainingSettings(
    rank=4,
    alpha=16,
    dropout=0.05,
    learning_rate=0.05,
    warmup_steps=0,
    gradient_accumulation=2,
    max_steps=4,
    checkpoint_every=2,
    max_validation_examples=2,
    max_length=512,
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
    result = train_adapter(
        dataset.folder, base, "tiny", registry, tmp_path / "runs", FAST, name="first", on_step=steps.append
    )
    assert registry.list() == ["first"] and result.path == registry.path("first")
    assert [s.step for s in steps] == [1, 2, 3, 4] and steps[1].validation_loss is not None
    metadata = json.loads((result.path / "lore.json").read_text(encoding="utf-8"))
    assert metadata["base_model"] == "tiny"
    assert metadata["base_model_hash"] == base_model_fingerprint(base)
    assert metadata["dataset"]["hash"] == dataset.hash
    assert metadata["hyperparameters"]["rank"] == 4 and metadata["metrics"]["steps"] == 4
    assert metadata["metrics"]["validation_loss"] == pytest.approx(
        min(loss for _, loss in metadata["validation_curve"]), abs=1e-4
    )

    prompt = [ChatMessage("user", "When is payday?")]
    settings = GenerationSettings(max_new_tokens=16)
    with LocalModel(base, adapters=registry) as model:
        plain = model.generate(prompt, settings)
        model.use_adapter("first")
        tuned = model.generate(prompt, settings)
    assert plain != tuned


def test_resume_continues_from_the_last_checkpoint(dataset: DatasetCard, base: Path, tmp_path: Path) -> None:
    settings = replace(FAST, gradient_accumulation=1)
    straight = train_adapter(
        dataset.folder, base, "tiny", AdapterRegistry(tmp_path / "a"), tmp_path / "runs-a", settings
    )

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


def test_a_time_budget_shortens_the_run_and_stops_it_with_its_best_weights(
    dataset: DatasetCard, base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.customize import training

    clock = iter(range(0, 10_000, 10))  # every reading of the clock is 10 s later
    monkeypatch.setattr(training.time, "perf_counter", lambda: float(next(clock)))
    settings = replace(FAST, epochs=30, max_steps=40, checkpoint_every=100, max_minutes=2.0)
    steps: list[StepReport] = []
    result = train_adapter(
        dataset.folder,
        base,
        "tiny",
        AdapterRegistry(tmp_path / "adapters"),
        tmp_path / "runs",
        settings,
        on_step=steps.append,
    )
    metrics = result.metadata["metrics"]
    assert metrics["planned_steps"] == 40
    # Timed over 5 steps, the plan shrinks to what fits in 120 s, and the run ends on time.
    assert steps[5].total_steps < 40 and result.steps < 40
    assert result.steps == result.total_steps or metrics["stopped_for_time"]
    assert result.validation_loss is not None  # the last step validated, so weights were chosen
    assert steps[-1].learning_rate == pytest.approx(0.0, abs=1e-9) or metrics["stopped_for_time"]


def test_the_answer_only_loss_equals_the_models_own_loss(base: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    from bot.customize.tokenize import IGNORE, TokenizedExample
    from bot.customize.training import _answer_loss, _collate

    model = AutoModelForCausalLM.from_pretrained(base)
    # Two examples of different lengths: right padding puts the answers at different places.
    items = [
        TokenizedExample(tuple(range(5, 40)), (IGNORE,) * 28 + tuple(range(33, 40))),
        TokenizedExample(tuple(range(7, 30)), (IGNORE,) * 15 + tuple(range(22, 30))),
    ]
    for batch in (_collate(items, 0, "cpu"), _collate(items[1:], 0, "cpu")):
        with torch.no_grad():
            assert float(_answer_loss(model, batch)) == pytest.approx(float(model(**batch).loss), rel=1e-5)


def test_a_time_budget_plan_is_refined_both_ways_within_the_planned_steps() -> None:
    from bot.customize.training import _Plan

    plan = _Plan(100)
    plan.fit(step=5, seconds_per_step=30.0, seconds_left=600.0)  # a slow start: ~19 more steps fit
    assert 20 <= plan.total_steps <= 25
    plan.fit(step=20, seconds_per_step=5.0, seconds_left=300.0)  # the pace improved: ~57 more
    assert 100 > plan.total_steps > 25
    plan.fit(step=30, seconds_per_step=1.0, seconds_left=10_000.0)  # never beyond what was planned
    assert plan.total_steps == 100
    plan.fit(step=90, seconds_per_step=10.0, seconds_left=1.0)  # out of time: at least the next step
    assert plan.total_steps == 91


def test_top_layers_adapts_only_the_last_layers(dataset: DatasetCard, base: Path, tmp_path: Path) -> None:
    from safetensors import safe_open

    registry = AdapterRegistry(tmp_path / "adapters")
    result = train_adapter(
        dataset.folder, base, "tiny", registry, tmp_path / "runs", replace(FAST, max_steps=2, top_layers=1), name="top"
    )
    with safe_open(str(result.path / "adapter_model.safetensors"), "pt") as weights:
        layers = {int(key.split(".layers.")[1].split(".")[0]) for key in weights.keys()}  # safe_open has no __iter__
    last = json.loads((base / "config.json").read_text(encoding="utf-8"))["num_hidden_layers"] - 1
    assert layers == {last}
    with pytest.raises(ConfigurationError, match="top_layers must be between 1 and"):
        train_adapter(
            dataset.folder, base, "tiny", registry, tmp_path / "runs", replace(FAST, top_layers=99), name="bad"
        )


def owner_only(tree: Path) -> dict[str, str]:
    """Everything under `tree` (itself included) that another account could read: path → mode."""
    loose = {}
    for path in [tree, *tree.rglob("*")]:
        mode = path.stat().st_mode & 0o777
        if mode & 0o077 or mode != (0o700 if path.is_dir() else 0o600):
            loose[str(path.relative_to(tree.parent))] = oct(mode)
    return loose


def test_datasets_adapters_and_checkpoints_are_readable_by_their_owner_only(
    dataset: DatasetCard, base: Path, tmp_path: Path
) -> None:
    registry = AdapterRegistry(tmp_path / "adapters")

    result = train_adapter(dataset.folder, base, "tiny", registry, tmp_path / "runs", FAST, name="private")

    assert owner_only(dataset.folder) == {}  # examples quote documents and corrections
    assert owner_only(result.path) == {}  # the weights can repeat them
    assert owner_only(registry.directory) == {} and owner_only(dataset.folder.parent) == {}
    (run,) = (tmp_path / "runs").iterdir()
    assert run.stat().st_mode & 0o777 == 0o700  # checkpoints of the run
