"""Lore's openai backend against a real OpenAI-compatible engine: llama.cpp's server
(`python -m llama_cpp.server`) with the bundled SmolLM2 GGUF and adapters exported by
`lore customize export --format gguf`.

Opt-in: llama-cpp-python compiles for many minutes, so it is not a test dependency. Point
LORE_TEST_LLAMA_PYTHON at an interpreter that has it (docs/model-serving.md shows the build):

    LORE_TEST_LLAMA_PYTHON=/work/llama-venv/bin/python python -m pytest tests/model/test_llama_server.py
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from bot.app import Services
from bot.cli.main import cli
from bot.conversation.memory import answer_and_remember
from bot.model.base import ChatMessage, GenerationSettings
from bot.model.openai_backend import OpenAIModel
from bot.types import Asker, Question
from tests.support.llama_engine import (
    PINEAPPLE,
    Engine,
    bundled_base_folder,
    engine_next_token_logits,
    llama_python,
    llama_server,
    write_pineapple_adapter,
    write_random_adapter,
)
from tests.support.stack import build_test_services

LLAMA_PYTHON = llama_python()
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        LLAMA_PYTHON is None,
        reason="needs llama-cpp-python[server]: set LORE_TEST_LLAMA_PYTHON to an interpreter that has it "
        "(see docs/model-serving.md)",
    ),
]
BASE = "smollm2"
QUESTION = [ChatMessage("user", "What is the capital of France?")]
GREEDY = GenerationSettings(max_new_tokens=12, temperature=0.0, repetition_penalty=1.0)


@pytest.fixture(scope="module")
def base_folder() -> Path:
    return bundled_base_folder()


@pytest.fixture(scope="module")
def exported(base_folder: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two adapters in a LORE_HOME, exported to GGUF with `lore customize export`."""
    root = tmp_path_factory.mktemp("engine")
    home = root / "home"
    write_pineapple_adapter(base_folder, home / "adapters" / "lore-pineapple")
    # Strong enough that its effect on the logits stands well above Q4_1's quantization noise.
    write_random_adapter(base_folder, home / "adapters" / "lore-random", scale=0.1)
    runner = CliRunner(
        env={
            "LORE_CONFIG": str(root / "absent.toml"),
            "LORE_HOME": str(home),
            "LORE_MODEL__BASE_MODEL": str(base_folder),
        }
    )
    files = {}
    for name in ("lore-pineapple", "lore-random"):
        result = runner.invoke(cli, ["customize", "export", name, "--out", str(root / "gguf")], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        files[name] = root / "gguf" / f"{name}.gguf"
    return {**files, "home": home}


@pytest.fixture(scope="module")
def engine(exported: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    assert LLAMA_PYTHON is not None
    models = {BASE: None, "lore-pineapple": exported["lore-pineapple"]}
    with llama_server(LLAMA_PYTHON, models, tmp_path_factory.mktemp("server")) as running:
        yield running


def test_the_engine_answers_with_the_adapter_named_by_model_adapter(engine: Engine) -> None:
    model = OpenAIModel(engine.url, BASE)
    base_answer = "".join(model.stream(QUESTION, GREEDY))
    model.use_adapter("lore-pineapple")
    adapter_answer = "".join(model.stream(QUESTION, GREEDY))
    model.use_adapter("base")
    base_again = model.generate(QUESTION, GREEDY)
    model.close()

    assert base_answer.strip()
    assert PINEAPPLE.strip() not in base_answer.lower()
    assert adapter_answer.lower().split().count(PINEAPPLE.strip()) >= 5, adapter_answer
    assert base_again == base_answer


def test_lores_answer_path_streams_a_cited_answer_from_the_engine(engine: Engine, tmp_path: Path) -> None:
    services: Services = build_test_services(
        tmp_path, model=OpenAIModel(engine.url, BASE), generate="always", max_new_tokens=40
    )
    question = Question(
        "How many days of paid time off do full-time employees get?", Asker("U1", "Ada"), "C1", "t1", "slack"
    )
    streamed: list[str] = []
    try:
        answer = answer_and_remember(services.agent, services.memory, question, on_text=streamed.append)
        services.model.use_adapter("lore-pineapple")
        adapted = answer_and_remember(services.agent, services.memory, replace(question, thread_id="t2"))
    finally:
        services.close()

    assert answer.confident
    assert "people/time-off.md" in [citation.source for citation in answer.citations]
    assert answer.generated.strip()
    assert (answer.model, answer.adapter) == (BASE, None)
    assert len(streamed) > 1  # the engine's server-sent events reached the caller as they came
    assert answer.timings["first_token"] < answer.timings["total"]
    assert PINEAPPLE.strip() not in answer.generated.lower()
    assert adapted.adapter == "lore-pineapple"
    assert adapted.generated.lower().split().count(PINEAPPLE.strip()) >= 5, adapted.generated


def test_the_engine_applies_the_gguf_adapter_as_peft_does(
    base_folder: Path, exported: dict[str, Path], tmp_path: Path
) -> None:
    """Next-token logits of transformers + peft (fp32) and llama.cpp + the exported GGUF (Q4_1
    base): the adapter's effect is the same on both, far beyond the quantization noise."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    assert LLAMA_PYTHON is not None
    tokenizer = AutoTokenizer.from_pretrained(base_folder)
    tokens = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Where can I park at the Rotterdam office?"}],
        add_generation_prompt=True,
        return_dict=False,
    )
    tokens = list(tokens)
    with torch.no_grad():
        base = AutoModelForCausalLM.from_pretrained(base_folder, dtype=torch.float32)
        torch_base = base(torch.tensor([tokens])).logits[0, -1].numpy()
        adapted = PeftModel.from_pretrained(base, exported["home"] / "adapters" / "lore-random")
        torch_adapted = adapted(torch.tensor([tokens])).logits[0, -1].numpy()
    engine_base = engine_next_token_logits(LLAMA_PYTHON, tokens, None, tmp_path)
    engine_adapted = engine_next_token_logits(LLAMA_PYTHON, tokens, exported["lore-random"], tmp_path)

    effect = torch_adapted - torch_base  # what the adapter does, in transformers
    engine_effect = engine_adapted - engine_base  # what it does in llama.cpp
    noise = np.abs(engine_base - torch_base).mean()  # Q4_1 against fp32, no adapter
    assert np.abs(effect).mean() > 3 * noise
    assert np.corrcoef(effect, engine_effect)[0, 1] > 0.9
    assert np.abs(engine_adapted - torch_adapted).mean() < 2 * noise
    assert int(engine_adapted.argmax()) == int(torch_adapted.argmax())
