"""A tiny, randomly initialised chat model with SmolLM2's real tokenizer, for fast tests.

The model is a 2-layer Llama with hidden size 64 and SmolLM2's vocabulary (49,152 tokens), seeded
so every build is identical. Its answers are gibberish, but it runs the real code paths
(chat template, generation, streaming, LoRA) in milliseconds.

Reading the tokenizer out of the bundled GGUF takes seconds, and so does importing enough of
transformers to initialise a model, so the first build in a machine's life is written to a
cache folder (`LORE_TEST_CACHE`, default `<tmp>/lore-test-cache`) and later builds copy it.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

# Bump when the model's recipe changes, so a stale cache is not reused.
_RECIPE = "tiny-llama-v2"
_SEED = 1234


def build_tiny_model(folder: Path, *, seed: int = _SEED, hidden_size: int = 64) -> Path:
    """Write the tiny model (weights, config, tokenizer, chat template) into `folder`; return it.

    A different `seed` gives a model with the same architecture and other weights; a different
    `hidden_size` gives one whose LoRA adapters do not fit the default one.
    """
    cached = _cached_model(seed, hidden_size)
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copytree(cached, folder, dirs_exist_ok=True)
    return folder


def _cache_root() -> Path:
    return Path(os.environ.get("LORE_TEST_CACHE") or Path(tempfile.gettempdir()) / "lore-test-cache")


def _cached_model(seed: int, hidden_size: int) -> Path:
    target = _cache_root() / f"{_RECIPE}-seed{seed}-h{hidden_size}"
    if not (target / "config.json").is_file():
        _publish(target, lambda folder: _write_model(folder, seed, hidden_size))
    return target


def _cached_tokenizer() -> Path:
    from bot.model.weights import bundled_gguf

    gguf = bundled_gguf()
    target = _cache_root() / f"smollm2-tokenizer-{gguf.stat().st_size}"
    if not (target / "tokenizer.json").is_file():
        _publish(target, lambda folder: _write_tokenizer(folder, gguf))
    return target


def _publish(target: Path, write: Callable[[Path], None]) -> None:
    """Write into a temporary folder and rename it into place, so parallel tests never see half."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        write(partial)
        try:
            partial.rename(target)
        except OSError:  # another process published it first
            pass
    finally:
        shutil.rmtree(partial, ignore_errors=True)


def _write_tokenizer(folder: Path, gguf: Path) -> None:
    from transformers import AutoTokenizer

    AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name).save_pretrained(folder)


def _write_model(folder: Path, seed: int, hidden_size: int) -> None:
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(_cached_tokenizer())
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 2,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=8192,
        tie_word_embeddings=True,
        # Far above the usual 0.02: with small weights a random model repeats one token forever;
        # with these its greedy output is varied text.
        initializer_range=0.3,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def build_tiny_adapter(
    base_folder: Path,
    adapter_folder: Path,
    *,
    seed: int = 7,
    scale: float = 0.5,
    metadata: dict[str, Any] | None = None,
) -> Path:
    """Save a LoRA adapter for the model in `base_folder` with peft, as training would.

    Its LoRA weights are random (`scale` sets their size; peft starts them at zero, which would
    change nothing), so it visibly changes the model's answers. `metadata` is written as
    lore.json beside it.
    """
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(base_folder)
    config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "down_proj"], task_type="CAUSAL_LM")
    model = get_peft_model(base, config)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "lora_" in name:
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * scale)
    model.save_pretrained(adapter_folder)
    if metadata is not None:
        (adapter_folder / "lore.json").write_text(json.dumps(metadata), encoding="utf-8")
    return adapter_folder
