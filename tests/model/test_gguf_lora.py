"""A Lore adapter as a GGUF LoRA file (`lore customize export --format gguf`), read back with
the gguf package; the query/key permutation is checked against transformers' own inverse of it.

With LORE_TEST_LLAMA_CPP_DIR naming llama.cpp's sources (e.g. `vendor/llama.cpp` of the
llama-cpp-python sdist), the file is also compared with what llama.cpp's own
convert_lora_to_gguf.py writes. That llama.cpp applies it as peft does is checked against the
real engine in tests/model/test_llama_server.py."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from gguf import GGUFReader
from peft import LoraConfig, get_peft_model
from safetensors.numpy import load_file
from transformers import AutoModelForCausalLM
from transformers.modeling_gguf_pytorch_utils import LlamaTensorProcessor

from bot.cli.main import cli
from bot.errors import ConfigurationError
from bot.model.gguf_lora import write_gguf_lora
from bot.model.weights import base_model_fingerprint
from tests.support.tiny_model import build_tiny_model

MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
GGUF_NAMES = {
    "q_proj": "attn_q",
    "k_proj": "attn_k",
    "v_proj": "attn_v",
    "o_proj": "attn_output",
    "gate_proj": "ffn_gate",
    "up_proj": "ffn_up",
    "down_proj": "ffn_down",
}


def make_adapter(base: Path, folder: Path, **lora: Any) -> Path:
    """A LoRA with random (non-zero) A and B on `base`, saved as a Lore adapter folder."""
    torch.manual_seed(7)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    config = LoraConfig(**{"r": 4, "lora_alpha": 8, "target_modules": list(MODULES), "task_type": "CAUSAL_LM", **lora})
    peft_model = get_peft_model(model, config)
    with torch.no_grad():
        for name, parameter in peft_model.named_parameters():
            if "lora_B" in name:
                parameter.normal_(0.0, 0.5)
    peft_model.save_pretrained(folder)
    metadata = {
        "base_model": "tiny",
        "base_model_hash": base_model_fingerprint(base),
        "created": "2026-12-05T00:00:00+00:00",
    }
    (folder / "lore.json").write_text(json.dumps(metadata), encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("base") / "tiny")


@pytest.fixture(scope="module")
def adapter(tiny_base: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_adapter(tiny_base, tmp_path_factory.mktemp("adapters") / "lore-test")


def read_gguf(path: Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    reader = GGUFReader(path)
    fields = {field.name: field.contents() for field in reader.fields.values() if not field.name.startswith("GGUF.")}
    # GGUF lists a tensor's dimensions innermost first; reversed they are numpy's shape.
    tensors = {
        tensor.name: np.array(tensor.data).reshape(tuple(int(n) for n in reversed(tensor.shape)))
        for tensor in reader.tensors
    }
    return fields, tensors


def test_the_gguf_file_holds_the_adapter_in_llama_cpp_layout(tiny_base: Path, adapter: Path, tmp_path: Path) -> None:
    written = write_gguf_lora(adapter, tiny_base, tmp_path / "out" / "lore-test.gguf")

    fields, tensors = read_gguf(written.path)
    assert fields["general.architecture"] == "llama"
    assert fields["general.type"] == "adapter"
    assert fields["adapter.type"] == "lora"
    assert fields["adapter.lora.alpha"] == pytest.approx(8.0)
    assert (written.rank, written.layers, written.tensors) == (4, 2, 2 * 2 * len(MODULES))
    assert len(tensors) == written.tensors

    peft = load_file(str(adapter / "adapter_model.safetensors"))
    config = json.loads((tiny_base / "config.json").read_text())
    heads, kv_heads = config["num_attention_heads"], config["num_key_value_heads"]
    unpermute = LlamaTensorProcessor()._reverse_permute_weights
    for layer in range(2):
        for module in MODULES:
            where = "self_attn" if module.endswith(("q_proj", "k_proj", "v_proj", "o_proj")) else "mlp"
            prefix = f"base_model.model.model.layers.{layer}.{where}.{module}"
            lora_a, lora_b = peft[f"{prefix}.lora_A.weight"], peft[f"{prefix}.lora_B.weight"]
            name = f"blk.{layer}.{GGUF_NAMES[module]}.weight"
            np.testing.assert_array_equal(tensors[f"{name}.lora_a"], lora_a)
            stored_b = tensors[f"{name}.lora_b"]
            if module in ("q_proj", "k_proj"):
                # transformers undoes GGUF's rotary row order when it loads a GGUF model: undone
                # here, lora_B is peft's again, and it was not left in peft's order.
                assert not np.array_equal(stored_b, lora_b)
                np.testing.assert_array_equal(
                    unpermute(stored_b, heads, kv_heads if module == "k_proj" else None), lora_b
                )
            else:
                np.testing.assert_array_equal(stored_b, lora_b)


def test_rslora_scaling_is_carried_in_alpha(tiny_base: Path, tmp_path: Path) -> None:
    folder = make_adapter(tiny_base, tmp_path / "rs", use_rslora=True)

    written = write_gguf_lora(folder, tiny_base, tmp_path / "rs.gguf")

    # llama.cpp scales by alpha / rank; rsLoRA by lora_alpha / sqrt(rank).
    assert written.alpha / written.rank == pytest.approx(8 / math.sqrt(4))


@pytest.mark.parametrize(
    ("lora", "said"),
    [
        ({"use_dora": True}, "DoRA"),
        pytest.param(
            {"target_modules": ["q_proj", "lm_head"]},
            "lm_head",
            # peft warns about the tiny model's head, tied to its embeddings
            marks=pytest.mark.filterwarnings("ignore::UserWarning"),
        ),
        ({"rank_pattern": {"q_proj": 2}}, "per-module ranks"),
    ],
)
def test_adapters_a_gguf_lora_cannot_carry_are_refused(
    tiny_base: Path, tmp_path: Path, lora: dict[str, Any], said: str
) -> None:
    folder = make_adapter(tiny_base, tmp_path / "odd", **lora)

    with pytest.raises(ConfigurationError, match=said) as caught:
        write_gguf_lora(folder, tiny_base, tmp_path / "odd.gguf")

    assert "vLLM" in str(caught.value) or "retrain" in str(caught.value)
    assert not (tmp_path / "odd.gguf").exists()


def test_a_base_model_of_another_architecture_is_refused(tiny_base: Path, adapter: Path, tmp_path: Path) -> None:
    other = tmp_path / "qwen"
    other.mkdir()
    config = json.loads((tiny_base / "config.json").read_text())
    (other / "config.json").write_text(json.dumps({**config, "architectures": ["Qwen2ForCausalLM"]}))

    with pytest.raises(ConfigurationError, match="convert_lora_to_gguf.py"):
        write_gguf_lora(adapter, other, tmp_path / "x.gguf")


def test_lore_customize_export_writes_both_formats(tiny_base: Path, adapter: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    make_adapter(tiny_base, home / "adapters" / "lore-a")
    runner = CliRunner(
        env={
            "LORE_CONFIG": str(tmp_path / "absent.toml"),
            "LORE_HOME": str(home),
            "LORE_MODEL__BASE_MODEL": str(tiny_base),
        }
    )

    gguf = runner.invoke(cli, ["customize", "export", "lore-a", "--out", str(tmp_path / "out")], catch_exceptions=False)
    peft = runner.invoke(
        cli, ["customize", "export", "--format", "peft", "--out", str(tmp_path / "out")], catch_exceptions=False
    )

    assert gguf.exit_code == 0, gguf.output
    assert "--lora" in gguf.output and "model.adapter = 'lore-a'" in gguf.output
    assert read_gguf(tmp_path / "out" / "lore-a.gguf")[0]["adapter.type"] == "lora"
    assert peft.exit_code == 0, peft.output
    assert "--lora-modules lore-a=" in peft.output
    assert sorted(p.name for p in (tmp_path / "out" / "lore-a").iterdir()) == [
        "adapter_config.json",
        "adapter_model.safetensors",
        "lore.json",
    ]


def test_export_refuses_an_adapter_trained_on_another_base(tiny_base: Path, tmp_path: Path) -> None:
    other_base = build_tiny_model(tmp_path / "other", seed=99)
    home = tmp_path / "home"
    make_adapter(other_base, home / "adapters" / "lore-other")
    runner = CliRunner(
        env={
            "LORE_CONFIG": str(tmp_path / "absent.toml"),
            "LORE_HOME": str(home),
            "LORE_MODEL__BASE_MODEL": str(tiny_base),
        }
    )

    result = runner.invoke(cli, ["customize", "export", "lore-other", "--out", str(tmp_path / "out")])

    assert result.exit_code != 0
    assert "weights hash" in result.output
    assert not (tmp_path / "out" / "lore-other.gguf").exists()


LLAMA_CPP_DIR = os.environ.get("LORE_TEST_LLAMA_CPP_DIR")


@pytest.mark.skipif(
    LLAMA_CPP_DIR is None, reason="set LORE_TEST_LLAMA_CPP_DIR to llama.cpp's sources (convert_lora_to_gguf.py)"
)
def test_the_file_has_the_tensors_llama_cpps_own_converter_writes(
    tiny_base: Path, adapter: Path, tmp_path: Path
) -> None:
    assert LLAMA_CPP_DIR is not None
    theirs = tmp_path / "theirs.gguf"
    subprocess.run(
        [
            sys.executable,
            str(Path(LLAMA_CPP_DIR) / "convert_lora_to_gguf.py"),
            "--base",
            str(tiny_base),
            "--outtype",
            "f32",
            "--outfile",
            str(theirs),
            str(adapter),
        ],
        check=True,
        capture_output=True,
        timeout=600,
    )
    ours = write_gguf_lora(adapter, tiny_base, tmp_path / "ours.gguf").path

    our_fields, our_tensors = read_gguf(ours)
    their_fields, their_tensors = read_gguf(theirs)
    for key in ("general.architecture", "general.type", "adapter.type", "adapter.lora.alpha"):
        assert our_fields[key] == their_fields[key], key
    assert sorted(our_tensors) == sorted(their_tensors)
    for name, tensor in our_tensors.items():
        assert tensor.dtype == their_tensors[name].dtype, name
        np.testing.assert_array_equal(tensor, their_tensors[name], err_msg=name)
