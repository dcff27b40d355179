"""The real bundled SmolLM2-135M-Instruct: GGUF conversion, the cache, and a real answer.

Run with `python -m pytest tests/model/test_model_bundled.py -m slow -s` to see the timings.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from transformers import AutoTokenizer

from bot.model import load_model
from bot.model.base import ChatMessage, GenerationSettings
from bot.model.local import LocalModel
from bot.model.weights import BUNDLED_CACHE, BUNDLED_NAME
from bot.settings import ModelSettings

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", autouse=True)
def single_torch_thread() -> Iterator[None]:
    """Measure with torch's own thread count, as the bot runs (overrides the tiny-model fixture)."""
    yield


def test_bundled_model_converts_caches_and_answers(tmp_path: Path) -> None:
    settings = ModelSettings(max_new_tokens=48)
    started = time.perf_counter()
    model = load_model(settings, tmp_path)
    first_load = time.perf_counter() - started
    assert isinstance(model, LocalModel)
    cache = tmp_path / "models" / BUNDLED_CACHE
    assert (cache / "model.safetensors").is_file()
    assert model.name == BUNDLED_NAME
    assert model.context_window == 8192
    model.close()

    started = time.perf_counter()
    model = load_model(settings, tmp_path)
    cached_load = time.perf_counter() - started
    question = [ChatMessage("user", "What is the capital of France? Answer in one short sentence.")]
    try:
        model.generate([ChatMessage("user", "Hi")], GenerationSettings(max_new_tokens=2))  # warm-up
        started = time.perf_counter()
        stream = model.stream(question, GenerationSettings(max_new_tokens=48))
        first_piece = next(stream)
        first_token = time.perf_counter() - started
        answer = first_piece + "".join(stream)
        total = time.perf_counter() - started
    finally:
        model.close()
    tokens = len(AutoTokenizer.from_pretrained(cache)(answer, add_special_tokens=False)["input_ids"])
    print(
        f"\nSmolLM2-135M-Instruct: first load (GGUF conversion + cache) {first_load:.1f} s, "
        f"cached load {cached_load:.2f} s, time to first token {first_token:.2f} s, "
        f"{tokens} tokens in {total:.1f} s = {tokens / total:.1f} tokens/s\nanswer: {answer!r}"
    )
    assert "paris" in answer.lower()
    assert cached_load < first_load / 2
