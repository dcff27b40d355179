"""The company's adapter served by a real engine: llama.cpp (`python -m llama_cpp.server`) with
the bundled SmolLM2 GGUF, base model vs base + the adapter written by
`lore customize export --format gguf`, beside Lore's own local backend (transformers + peft).

    LORE_TEST_LLAMA_PYTHON=/work/llama-venv/bin/python python benchmarks/engine_lora.py
    ... benchmarks/engine_lora.py --rounds 5 --new-tokens 64 --json

The adapter is shaped like `lore customize train`'s default (rank 16 on every linear layer of
every decoder layer) with random weights (strong enough to move the logits well beyond Q4_1's
quantization noise): speed does not depend on what it learned.

1. **Throughput**, per engine and model: prompt tokens/s (Lore's agent prompt, ~1000 tokens,
   one new token) and generated tokens/s (a short question, `--new-tokens` greedy tokens, the
   end-of-sequence token allowed), medians over `--rounds` requests through Lore's `OpenAIModel`
   (the engine) or `LocalModel` (transformers), after one warm-up request each.
2. **Faithfulness**: next-token logits on a question, llama.cpp (Q4_1 base) against
   transformers + peft (fp32 base): the quantization noise without the adapter, the adapter's
   effect in each, and their agreement; with a control file written *without* the GGUF
   rotary permutation of the query/key lora_B, to show the check can tell.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.model.adapters import AdapterRegistry  # noqa: E402
from bot.model.base import ChatMessage, GenerationSettings, Model  # noqa: E402
from bot.model.gguf_lora import write_gguf_lora  # noqa: E402
from bot.model.openai_backend import OpenAIModel  # noqa: E402
from tests.support.llama_engine import (  # noqa: E402
    bundled_base_folder,
    engine_next_token_logits,
    llama_python,
    llama_server,
    write_random_adapter,
)

ADAPTER = "lore-bench"
SHORT = [ChatMessage("user", "Write a short story about a lighthouse keeper and a storm.")]


def agent_prompt(tokens: int) -> list[ChatMessage]:
    """A prompt of about `tokens` tokens shaped like the agent's: persona, passages, question."""
    passage = (
        "Full-time employees get 27 days of paid time off per year. PTO accrues monthly. "
        "You may carry over at most 5 unused days into the next year. "
    )
    passages = "\n\n".join(f"[{n}] people/time-off.md > Paid time off: {passage}" for n in range(1, 200))
    text = passages[: tokens * 4]
    return [
        ChatMessage("system", "You are Lore, the company's internal assistant. Answer from the passages."),
        ChatMessage("user", f"{text}\n\nQuestion: How many days of paid time off do I get?"),
    ]


def median_rate(model: Model, messages: list[ChatMessage], settings: GenerationSettings, rounds: int) -> float:
    """Median tokens/s of `rounds` generations (after a warm-up), counting `count(text)` tokens."""
    list(model.stream(messages, settings))  # warm-up: loads the model or switches the engine's
    rates = []
    for _ in range(rounds):
        started = time.perf_counter()
        text = "".join(model.stream(messages, settings))
        seconds = time.perf_counter() - started
        rates.append(max(1, _tokens(text)) / seconds)
    return statistics.median(rates)


_TOKENIZER: Any = None


def _tokens(text: str) -> int:
    return len(_TOKENIZER.encode(text, add_special_tokens=False))


def prompt_rate(model: Model, messages: list[ChatMessage], rounds: int, prompt_tokens: int) -> float:
    """Median prompt tokens/s: one new token after `messages` (prefill dominates)."""
    settings = GenerationSettings(max_new_tokens=1, temperature=0.0, repetition_penalty=1.0)
    list(model.stream(messages, settings))
    rates = []
    for round_ in range(rounds):
        # A different first character each round, so no engine reuses a cached prefix.
        varied = [ChatMessage(messages[0].role, f"{round_} {messages[0].content}"), *messages[1:]]
        started = time.perf_counter()
        list(model.stream(varied, settings))
        rates.append(prompt_tokens / (time.perf_counter() - started))
    return statistics.median(rates)


def measure(engine: str, model_name: str, model: Model, args: argparse.Namespace) -> dict[str, Any]:
    """One row of the throughput table; closes `model`."""
    generation = GenerationSettings(max_new_tokens=args.new_tokens, temperature=0.0, repetition_penalty=1.0)
    try:
        return {
            "engine": engine,
            "model": model_name,
            "prompt_tokens_per_s": round(
                prompt_rate(model, agent_prompt(args.prompt_tokens), args.rounds, args.prompt_tokens), 1
            ),
            "generated_tokens_per_s": round(median_rate(model, SHORT, generation, args.rounds), 2),
        }
    finally:
        model.close()


def faithfulness(python: str, base: Path, adapter_folder: Path, gguf: Path, work: Path) -> dict[str, float]:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    tokens = _TOKENIZER.apply_chat_template(
        [{"role": "user", "content": "Where can I park at the Rotterdam office?"}],
        add_generation_prompt=True,
        return_dict=False,
    )
    tokens = list(tokens)
    with torch.no_grad():
        model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
        torch_base = model(torch.tensor([tokens])).logits[0, -1].numpy()
        torch_adapted = PeftModel.from_pretrained(model, adapter_folder)(torch.tensor([tokens])).logits[0, -1].numpy()
    unpermuted = work / "unpermuted.gguf"
    with mock.patch("bot.model.gguf_lora.rotary_permute", lambda rows, heads: rows):
        write_gguf_lora(adapter_folder, base, unpermuted)
    engine_base = engine_next_token_logits(python, tokens, None, work)
    engine_adapted = engine_next_token_logits(python, tokens, gguf, work)
    engine_control = engine_next_token_logits(python, tokens, unpermuted, work)
    effect = torch_adapted - torch_base
    return {
        "quantization_noise_mean_abs": float(np.abs(engine_base - torch_base).mean()),
        "adapter_effect_mean_abs": float(np.abs(effect).mean()),
        "engine_vs_peft_with_adapter_mean_abs": float(np.abs(engine_adapted - torch_adapted).mean()),
        "effect_correlation": float(np.corrcoef(effect, engine_adapted - engine_base)[0, 1]),
        "control_unpermuted_vs_peft_mean_abs": float(np.abs(engine_control - torch_adapted).mean()),
        "control_effect_correlation": float(np.corrcoef(effect, engine_control - engine_base)[0, 1]),
        "same_top_token": float(int(engine_adapted.argmax()) == int(torch_adapted.argmax())),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--new-tokens", type=int, default=48)
    parser.add_argument("--prompt-tokens", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=2, help="llama.cpp threads (torch uses its default)")
    parser.add_argument("--no-local", action="store_true", help="Skip Lore's local backend (transformers).")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    python = llama_python()
    if python is None:
        sys.exit("needs llama-cpp-python[server]: set LORE_TEST_LLAMA_PYTHON (see docs/model-serving.md)")

    from transformers import AutoTokenizer

    global _TOKENIZER
    base = bundled_base_folder()
    _TOKENIZER = AutoTokenizer.from_pretrained(base)
    with tempfile.TemporaryDirectory(prefix="engine-lora-") as tmp:
        work = Path(tmp)
        adapters = work / "home" / "adapters"
        adapter_folder = write_random_adapter(base, adapters / ADAPTER, rank=16, scale=0.1)
        gguf = write_gguf_lora(adapter_folder, base, work / f"{ADAPTER}.gguf").path
        rows: list[dict[str, Any]] = []
        # One server per model: llama_cpp.server reloads when a request names the other one.
        for served, lora in (("base", None), (ADAPTER, gguf)):
            with llama_server(python, {served: lora}, work, threads=args.threads) as engine:
                rows.append(measure("llama.cpp Q4_1", served, OpenAIModel(engine.url, served), args))
        if not args.no_local:
            from bot.model.local import LocalModel

            registry = AdapterRegistry(adapters)
            for wanted in (None, ADAPTER):
                local = LocalModel(base, name="SmolLM2", adapters=registry, adapter=wanted, device="cpu")
                rows.append(measure("transformers fp32", wanted or "base", local, args))
        checks = faithfulness(python, base, adapter_folder, gguf, work)
    if args.json:
        print(json.dumps({"throughput": rows, "faithfulness": checks}))
        return
    print(f"{'engine':20}{'model':14}{'prompt tok/s':>14}{'generated tok/s':>17}")
    for row in rows:
        print(f"{row['engine']:20}{row['model']:14}{row['prompt_tokens_per_s']:>14}{row['generated_tokens_per_s']:>17}")
    print()
    for key, value in checks.items():
        print(f"{key:40}{value:10.4f}")


if __name__ == "__main__":
    main()
