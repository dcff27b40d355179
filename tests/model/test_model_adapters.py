"""LoRA adapters: the registry, loading peft folders, swapping, and refusing a wrong base model."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest

from bot.errors import AdapterMismatchError, ConfigurationError, ModelNotFoundError
from bot.model.adapters import AdapterRegistry
from bot.model.base import ChatMessage, GenerationSettings
from bot.model.local import LocalModel
from bot.model.weights import base_model_fingerprint
from tests.support.tiny_model import build_tiny_adapter, build_tiny_model

QUESTION = [ChatMessage("user", "Who approves expense reports?")]
PLAIN = GenerationSettings(max_new_tokens=16, repetition_penalty=1.0, stop_on_repeated_ngram=0)


@pytest.fixture()
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture()
def base(home: Path) -> Path:
    return build_tiny_model(home / "models" / "tiny")


@pytest.fixture()
def registry(home: Path) -> AdapterRegistry:
    (home / "adapters").mkdir(parents=True)
    return AdapterRegistry(home / "adapters")


def test_registry_lists_oldest_first_and_promotes(base: Path, registry: AdapterRegistry) -> None:
    for name, created in [
        ("newer", "2026-11-02T00:00:00+00:00"),
        ("older", "2026-11-01T00:00:00+00:00"),
    ]:
        build_tiny_adapter(
            base,
            registry.directory / name,
            metadata={"created": created, "metrics": {"answer_accuracy": 0.5}},
        )
    (registry.directory / "not-an-adapter").mkdir()
    assert registry.list() == ["older", "newer"]
    assert registry.active() is None
    registry.set_active("newer")
    assert (registry.directory / "ACTIVE").read_text().strip() == "newer"
    assert registry.active() == "newer"
    info = registry.info("older")
    assert info.metadata["metrics"] == {"answer_accuracy": 0.5}
    assert info.created is not None and info.created.day == 1
    assert info.base_model == str(base)  # from peft's adapter_config.json
    registry.set_active("base")
    assert registry.active() is None


def test_registry_errors_say_what_to_do(base: Path, registry: AdapterRegistry) -> None:
    build_tiny_adapter(base, registry.directory / "v1")
    with pytest.raises(ModelNotFoundError, match=r"no adapter named 'v2' .*available: v1.*lore customize train"):
        registry.path("v2")
    with pytest.raises(ModelNotFoundError):
        registry.set_active("v2")
    assert registry.active() is None
    for bad in ["../v1", "", ".hidden", "base"]:
        with pytest.raises(ConfigurationError, match="not a valid adapter name"):
            registry.path(bad)


def test_adapter_changes_output_and_base_comes_back_exactly(base: Path, registry: AdapterRegistry) -> None:
    build_tiny_adapter(base, registry.directory / "acme-v1")
    with LocalModel(base, adapters=registry) as model:
        plain = model.generate(QUESTION, PLAIN)
        model.use_adapter("acme-v1")
        assert model.adapter == "acme-v1"
        adapted = model.generate(QUESTION, PLAIN)
        model.use_adapter(None)
        assert model.adapter is None
        again = model.generate(QUESTION, PLAIN)
        model.use_adapter("acme-v1")
        adapted_again = model.generate(QUESTION, PLAIN)
    assert adapted != plain
    assert again == plain
    assert adapted_again == adapted


def test_swap_between_two_adapters_and_the_promoted_one_at_start(base: Path, registry: AdapterRegistry) -> None:
    build_tiny_adapter(base, registry.directory / "one", seed=1)
    build_tiny_adapter(base, registry.directory / "two.2026-11", seed=2)  # '.' is fine in names
    registry.set_active("two.2026-11")
    with LocalModel(base, adapters=registry, adapter=registry.active()) as model:
        assert model.adapter == "two.2026-11"
        two = model.generate(QUESTION, PLAIN)
        model.use_adapter("one")
        one = model.generate(QUESTION, PLAIN)
        model.use_adapter("base")
        plain = model.generate(QUESTION, PLAIN)
    assert len({one, two, plain}) == 3


def test_adapter_rewritten_on_disk_is_reloaded(base: Path, registry: AdapterRegistry) -> None:
    folder = build_tiny_adapter(base, registry.directory / "v1", seed=1)
    with LocalModel(base, adapters=registry, adapter="v1") as model:
        first = model.generate(QUESTION, PLAIN)
        build_tiny_adapter(base, folder, seed=2)
        later = os.stat(folder / "adapter_model.safetensors").st_mtime_ns + 1_000_000_000
        os.utime(folder / "adapter_model.safetensors", ns=(later, later))
        model.use_adapter("v1")
        second = model.generate(QUESTION, PLAIN)
    assert first != second


def test_swap_waits_for_the_answer_in_progress(base: Path, registry: AdapterRegistry) -> None:
    build_tiny_adapter(base, registry.directory / "v1")
    long = GenerationSettings(max_new_tokens=40, repetition_penalty=1.0, stop_on_repeated_ngram=0)
    with LocalModel(base, adapters=registry) as model:
        plain = model.generate(QUESTION, long)
        stream = model.stream(QUESTION, long)
        first = next(stream)
        swapper = threading.Thread(target=model.use_adapter, args=("v1",))
        swapper.start()
        answer = first + "".join(stream)
        swapper.join(timeout=60)
        assert model.adapter == "v1"
    assert answer == plain  # begun on the base model, finished on it


def test_adapter_for_another_base_model_is_refused_by_name(base: Path, registry: AdapterRegistry, home: Path) -> None:
    other = build_tiny_model(home / "models" / "other-model", seed=99)
    build_tiny_adapter(other, registry.directory / "foreign")
    with LocalModel(base, adapters=registry) as model:
        with pytest.raises(AdapterMismatchError, match=r"needs base model .*other-model.* set model\.base_model"):
            model.use_adapter("foreign")
        assert model.adapter is None


def test_adapter_recording_another_weights_hash_is_refused(base: Path, registry: AdapterRegistry, home: Path) -> None:
    other = build_tiny_model(home / "elsewhere" / "tiny", seed=99)  # same name, other weights
    build_tiny_adapter(
        other,
        registry.directory / "foreign",
        metadata={"base_model": "tiny", "base_model_hash": base_model_fingerprint(other)},
    )
    build_tiny_adapter(
        base,
        registry.directory / "ours",
        metadata={"base_model": "tiny", "base_model_hash": base_model_fingerprint(base)},
    )
    assert base_model_fingerprint(other) != base_model_fingerprint(base)
    with LocalModel(base, adapters=registry) as model:
        with pytest.raises(AdapterMismatchError, match=r"weights hash .*`lore customize train`"):
            model.use_adapter("foreign")
        model.use_adapter("ours")
        assert model.adapter == "ours"


def test_adapter_with_wrong_shapes_is_refused_and_the_model_keeps_working(
    base: Path, registry: AdapterRegistry, home: Path
) -> None:
    wider = build_tiny_model(home / "models" / "wide", hidden_size=96)
    folder = build_tiny_adapter(wider, registry.directory / "wide-adapter")
    # Claims our base model, but its matrices are sized for another one.
    config = json.loads((folder / "adapter_config.json").read_text())
    (folder / "adapter_config.json").write_text(json.dumps({**config, "base_model_name_or_path": str(base)}))
    build_tiny_adapter(base, registry.directory / "good")
    with LocalModel(base, adapters=registry) as model:
        plain = model.generate(QUESTION, PLAIN)
        with pytest.raises(AdapterMismatchError, match="does not fit base model"):
            model.use_adapter("wide-adapter")
        assert model.adapter is None
        assert model.generate(QUESTION, PLAIN) == plain
        model.use_adapter("good")
        assert model.generate(QUESTION, PLAIN) != plain
        with pytest.raises(AdapterMismatchError):
            model.use_adapter("wide-adapter")
        assert model.adapter == "good"


def test_missing_adapter_and_no_registry(base: Path, registry: AdapterRegistry) -> None:
    with pytest.raises(ModelNotFoundError, match="no adapter named 'ghost'"):
        LocalModel(base, adapters=registry, adapter="ghost")
    with (
        LocalModel(base) as model,
        pytest.raises(ConfigurationError, match="without an adapters folder"),
    ):
        model.use_adapter("anything")
