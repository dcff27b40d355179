"""Promotion, listing and rollback over real adapter folders written by peft."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.customize.promotion import (
    PromotionError,
    list_adapters,
    promote,
    rollback,
    store_evaluation,
)
from bot.model.adapters import AdapterRegistry
from tests.support.tiny_model import build_tiny_adapter, build_tiny_model


def _scores(answer: float, base: float = 0.2) -> dict[str, object]:
    return {
        "base": {"answer_accuracy": base, "citation_accuracy": 0.5, "abstention": 1.0, "latency_p50": 0.1},
        "adapter": {"answer_accuracy": answer, "citation_accuracy": 0.6, "abstention": 1.0, "latency_p50": 0.1},
    }


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture
def registry(base: Path, tmp_path: Path) -> AdapterRegistry:
    registry = AdapterRegistry(tmp_path / "adapters")
    for number, name in enumerate(("first", "second", "third"), start=1):
        metadata = {
            "base_model": "tiny",
            "created": f"2026-11-0{number}T10:00:00+00:00",
            "metrics": {"validation_loss": 1.0 / number},
        }
        build_tiny_adapter(base, registry.directory / name, seed=number, metadata=metadata)
    return registry


def test_promotion_needs_a_stored_evaluation_or_force(registry: AdapterRegistry) -> None:
    with pytest.raises(PromotionError, match="lore customize eval"):
        promote(registry, "first")
    assert registry.active() is None
    done = promote(registry, "first", force=True)
    assert done.forced and registry.active() == "first"


def test_promotion_refuses_an_adapter_that_does_not_beat_the_active_one(registry: AdapterRegistry) -> None:
    store_evaluation(registry, "first", _scores(0.5))
    store_evaluation(registry, "second", _scores(0.4))
    store_evaluation(registry, "third", _scores(0.7))
    assert promote(registry, "first").beaten == pytest.approx(0.2)  # beats the base model
    with pytest.raises(PromotionError, match="does not beat adapter 'first'"):
        promote(registry, "second")
    assert registry.active() == "first"
    assert promote(registry, "third").beaten == pytest.approx(0.5)
    assert registry.active() == "third"
    promote(registry, "second", force=True)
    assert registry.active() == "second"


def test_an_adapter_no_better_than_the_base_model_is_refused(registry: AdapterRegistry) -> None:
    store_evaluation(registry, "first", _scores(0.2, base=0.2))  # a tie is not better
    with pytest.raises(PromotionError, match="the base model"):
        promote(registry, "first")


def test_rollback_walks_back_through_promotions(registry: AdapterRegistry) -> None:
    with pytest.raises(PromotionError, match="Nothing to roll back"):
        rollback(registry)
    promote(registry, "first", force=True)
    promote(registry, "third", force=True)
    assert rollback(registry) == "first" and registry.active() == "first"
    assert rollback(registry) is None and registry.active() is None
    with pytest.raises(PromotionError):
        rollback(registry)


def test_list_is_oldest_first_with_metrics_and_active(registry: AdapterRegistry) -> None:
    store_evaluation(registry, "second", _scores(0.9))
    promote(registry, "second")
    listed = [a.to_dict() for a in list_adapters(registry)]
    assert [a["name"] for a in listed] == ["first", "second", "third"]
    assert [a["active"] for a in listed] == [False, True, False]
    assert listed[1]["metrics"]["evaluation"]["adapter"]["answer_accuracy"] == 0.9
    assert listed[0]["created"] == "2026-11-01T10:00:00+00:00"
    json.dumps(listed)  # what `list --json` prints
