"""A Lore adapter (a peft LoRA folder) as a GGUF LoRA file, the format llama.cpp loads.

llama.cpp's server applies a LoRA adapter given as GGUF (`llama-server --lora FILE`, or
`lora_path` in `python -m llama_cpp.server`'s config). This writes the same file as llama.cpp's
own `convert_lora_to_gguf.py` does for Llama-architecture models (SmolLM2, Llama, ...), without
needing llama.cpp's sources: metadata `general.type = "adapter"`, `adapter.type = "lora"`,
`adapter.lora.alpha`, and per adapted weight the tensors `blk.N.<weight>.weight.lora_a` (peft's
lora_A, rank × in) and `.lora_b` (peft's lora_B, out × rank).

Two details make it faithful. GGUF stores a Llama model's query and key projections with their
rows permuted (llama.cpp's rotary layout), so lora_B of `q_proj`/`k_proj` gets the same row
permutation. llama.cpp scales an adapter by alpha / rank; peft by lora_alpha / r, or
lora_alpha / sqrt(r) with rsLoRA, which is written as alpha = lora_alpha * sqrt(r).
vLLM needs none of this: it serves the peft folder itself (`--lora-modules NAME=FOLDER`).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bot.errors import ConfigurationError, ModelNotFoundError

# Base architectures whose GGUF tensor layout this writer knows (checked against llama.cpp).
_LLAMA_ARCHITECTURES = frozenset({"LlamaForCausalLM"})
_GGUF_WEIGHT = {
    "self_attn.q_proj": "attn_q",
    "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output",
    "mlp.gate_proj": "ffn_gate",
    "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
}
_PEFT_TENSOR = re.compile(r"^base_model\.model\.model\.layers\.(\d+)\.(\w+\.\w+)\.lora_([AB])\.weight$")


@dataclass(frozen=True)
class GgufLoraExport:
    """What `write_gguf_lora` wrote."""

    path: Path
    alpha: float
    rank: int
    tensors: int  # lora_a and lora_b counted separately
    layers: int


def write_gguf_lora(adapter_folder: Path, base_folder: Path, out_file: Path) -> GgufLoraExport:
    """Write the peft LoRA adapter in `adapter_folder`, trained on the Hugging Face model in
    `base_folder` (only its config.json is read), as the GGUF LoRA file `out_file`.

    Raises ConfigurationError for adapters llama.cpp cannot apply as they are (DoRA, embedding
    or head adapters, per-module ranks) and for base architectures other than Llama.
    """
    import gguf
    from safetensors.numpy import load_file

    peft_config = _read_json(adapter_folder / "adapter_config.json")
    heads, kv_heads = _llama_heads(_read_json(base_folder / "config.json"), base_folder)
    rank, alpha = _rank_and_alpha(peft_config, adapter_folder)
    weights_file = adapter_folder / "adapter_model.safetensors"
    if not weights_file.is_file():
        raise ModelNotFoundError(f"{weights_file} is missing: the adapter folder is damaged, retrain it")
    pairs = _lora_pairs(load_file(str(weights_file)), adapter_folder)

    out_file.parent.mkdir(parents=True, exist_ok=True)
    partial = out_file.with_name(f".{out_file.name}.partial")
    writer = gguf.GGUFWriter(str(partial), arch="llama")
    try:
        writer.add_type(gguf.GGUFType.ADAPTER)
        writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
        writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, alpha)
        writer.add_name(adapter_folder.name)
        for (layer, module), (lora_a, lora_b) in sorted(pairs.items()):
            name = f"blk.{layer}.{_GGUF_WEIGHT[module]}.weight"
            if module == "self_attn.q_proj":
                lora_b = rotary_permute(lora_b, heads)
            elif module == "self_attn.k_proj":
                lora_b = rotary_permute(lora_b, kv_heads)
            writer.add_tensor(f"{name}.lora_a", np.ascontiguousarray(lora_a, dtype=np.float32))
            writer.add_tensor(f"{name}.lora_b", np.ascontiguousarray(lora_b, dtype=np.float32))
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
    finally:
        writer.close()
    partial.replace(out_file)
    return GgufLoraExport(
        path=out_file,
        alpha=alpha,
        rank=rank,
        tensors=2 * len(pairs),
        layers=len({layer for layer, _ in pairs}),
    )


def rotary_permute(rows: np.ndarray, heads: int) -> np.ndarray:
    """`rows` (one per output feature of a query or key projection with `heads` heads) in the
    order GGUF stores them: llama.cpp's `LlamaModel.permute`, the inverse of transformers'
    `_reverse_permute_weights`."""
    half = rows.shape[0] // heads // 2
    return rows.reshape(heads, 2, half, *rows.shape[1:]).swapaxes(1, 2).reshape(rows.shape)


def _llama_heads(config: dict[str, Any], base_folder: Path) -> tuple[int, int]:
    architectures = config.get("architectures") or []
    if not _LLAMA_ARCHITECTURES.intersection(architectures):
        raise ConfigurationError(
            f"the base model in {base_folder} is {', '.join(architectures) or 'of an unknown architecture'}; "
            "Lore writes GGUF adapters for Llama-architecture models only: convert this one with "
            "llama.cpp's convert_lora_to_gguf.py --base BASE_FOLDER ADAPTER_FOLDER"
        )
    heads = int(config["num_attention_heads"])
    return heads, int(config.get("num_key_value_heads") or heads)


def _rank_and_alpha(peft_config: dict[str, Any], folder: Path) -> tuple[int, float]:
    """The rank, and the alpha that makes llama.cpp's alpha / rank equal peft's scaling."""
    unsupported = [
        what
        for what, present in (
            ("a non-LoRA peft type", peft_config.get("peft_type", "LORA") != "LORA"),
            ("DoRA (use_dora)", bool(peft_config.get("use_dora"))),
            (
                "per-module ranks or alphas (rank_pattern, alpha_pattern)",
                bool(peft_config.get("rank_pattern") or peft_config.get("alpha_pattern")),
            ),
            ("fully trained modules (modules_to_save)", bool(peft_config.get("modules_to_save"))),
            ("LoRA biases (lora_bias)", bool(peft_config.get("lora_bias"))),
        )
        if present
    ]
    if unsupported:
        raise ConfigurationError(
            f"adapter {folder.name} uses {', '.join(unsupported)}, which a GGUF LoRA cannot carry: "
            "serve it with vLLM (--enable-lora --lora-modules NAME=FOLDER), or retrain it with "
            "`lore customize train`"
        )
    rank = int(peft_config["r"])
    alpha = float(peft_config.get("lora_alpha") or rank)
    if peft_config.get("use_rslora"):
        alpha *= math.sqrt(rank)
    return rank, alpha


def _lora_pairs(tensors: dict[str, np.ndarray], folder: Path) -> dict[tuple[int, str], tuple[np.ndarray, np.ndarray]]:
    """(layer, module) → (lora_A, lora_B) for every adapted weight."""
    halves: dict[tuple[int, str], dict[str, np.ndarray]] = {}
    for key, value in tensors.items():
        match = _PEFT_TENSOR.match(key)
        if match is None or match.group(2) not in _GGUF_WEIGHT:
            raise ConfigurationError(
                f"adapter {folder.name} adapts {key}, which Lore cannot place in a GGUF LoRA (it "
                f"maps {', '.join(sorted(_GGUF_WEIGHT))} of the decoder layers): retrain it with "
                "`lore customize train --target-modules` limited to those, or serve it with vLLM"
            )
        halves.setdefault((int(match.group(1)), match.group(2)), {})[match.group(3)] = value
    if not halves:
        raise ConfigurationError(f"adapter {folder.name} holds no LoRA weights: retrain it")
    incomplete = [f"layer {layer} {module}" for (layer, module), pair in halves.items() if set(pair) != {"A", "B"}]
    if incomplete:
        raise ModelNotFoundError(
            f"adapter {folder.name} lacks lora_A or lora_B for {', '.join(sorted(incomplete))}: "
            "the adapter folder is damaged, retrain it"
        )
    return {key: (pair["A"], pair["B"]) for key, pair in halves.items()}


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelNotFoundError(f"cannot read {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ModelNotFoundError(f"{path} is not a JSON object")
    return data
