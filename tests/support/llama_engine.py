"""llama.cpp's OpenAI-compatible server (`python -m llama_cpp.server`) on loopback, with the
bundled SmolLM2 GGUF as the base model and Lore adapters as GGUF LoRAs, for the tests and
benchmarks that talk to a real engine.

llama-cpp-python compiles llama.cpp for many minutes, so it is not a test dependency: these
helpers run it with the interpreter `llama_python()` finds (`LORE_TEST_LLAMA_PYTHON`, else this
one if it can import `llama_cpp.server`). See docs/model-serving.md for the build.

Two adapters with known effects, both written as Lore adapter folders (peft + lore.json):
`write_pineapple_adapter` makes the model say " pineapple" at every step whatever the prompt
(a rank-1 LoRA on the last layer's down projection that adds a large, fixed direction to the
residual stream: its A reads the projection's mean input, which is positive for every token,
and its B points where the head ranks " pineapple" first); `write_random_adapter` perturbs
every linear layer, to compare the engine's logits with transformers + peft.
"""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bot.model.weights import base_model_fingerprint, bundled_gguf, cached_bundled_model

# The dequantized SmolLM2 weights are cached here across runs (as tests/core does).
MODEL_HOME = Path(tempfile.gettempdir()) / "lore-test-cache" / "smollm2-home"
PINEAPPLE = " pineapple"
_ENGINE_START_SECONDS = 120.0


def llama_python() -> str | None:
    """An interpreter with llama-cpp-python[server], or None."""
    configured = os.environ.get("LORE_TEST_LLAMA_PYTHON")
    if configured:
        return configured
    has_server = importlib.util.find_spec("llama_cpp") is not None and importlib.util.find_spec("fastapi") is not None
    return sys.executable if has_server else None


def bundled_base_folder() -> Path:
    """The bundled SmolLM2 as a Hugging Face folder (the base Lore trains adapters on)."""
    return cached_bundled_model(MODEL_HOME / "models")


def _save_adapter(peft_model: Any, folder: Path, base: Path) -> Path:
    peft_model.save_pretrained(folder)
    metadata = {
        "base_model": "SmolLM2-135M-Instruct",
        "base_model_path": str(base),
        "base_model_hash": base_model_fingerprint(base),
        "created": "2026-12-05T00:00:00+00:00",
    }
    (folder / "lore.json").write_text(json.dumps(metadata), encoding="utf-8")
    return folder


def write_pineapple_adapter(base: Path, folder: Path, strength: float = 200.0) -> Path:
    """A Lore adapter on `base` (SmolLM2) that makes the model repeat " pineapple"."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    last = len(model.model.layers) - 1
    seen: list[Any] = []
    hook = model.model.layers[last].mlp.down_proj.register_forward_hook(
        lambda module, inputs, output: seen.append(inputs[0][0])
    )
    for question in ("What is the capital of France?", "How many days of paid time off do I get?"):
        ids = tokenizer.apply_chat_template(
            [{"role": "user", "content": question}], add_generation_prompt=True, return_tensors="pt"
        )
        with torch.no_grad():
            model(ids if isinstance(ids, torch.Tensor) else ids["input_ids"])
    hook.remove()
    mean_input = torch.cat(seen).mean(0)
    # The head reads the final norm's output: token j scores embed_j * norm_weight · hidden.
    head = model.model.embed_tokens.weight.detach() * model.model.norm.weight.detach()
    (target,) = tokenizer.encode(PINEAPPLE, add_special_tokens=False)
    direction = head[target] - head.mean(0)
    config = LoraConfig(
        r=1, lora_alpha=1, target_modules=["down_proj"], layers_to_transform=[last], task_type="CAUSAL_LM"
    )
    peft_model = get_peft_model(model, config)
    layer = peft_model.base_model.model.model.layers[last].mlp.down_proj
    with torch.no_grad():
        layer.lora_A["default"].weight.copy_((mean_input / (mean_input @ mean_input))[None, :])
        layer.lora_B["default"].weight.copy_((strength * direction / direction.norm())[:, None])
    return _save_adapter(peft_model, folder, base)


def write_random_adapter(base: Path, folder: Path, *, rank: int = 8, scale: float = 0.02, seed: int = 0) -> Path:
    """A Lore adapter on `base` with random A and B (alpha = 2 * rank) on every linear layer of
    every decoder layer, as `lore customize train` adapts by default."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    config = LoraConfig(
        r=rank,
        lora_alpha=2 * rank,
        target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
        task_type="CAUSAL_LM",
    )
    peft_model = get_peft_model(model, config)
    with torch.no_grad():
        for name, parameter in peft_model.named_parameters():
            if "lora_B" in name:
                parameter.normal_(0.0, scale)
    return _save_adapter(peft_model, folder, base)


@dataclass(frozen=True)
class Engine:
    """A running llama_cpp.server: its /v1 URL and the model names it serves."""

    url: str
    models: tuple[str, ...]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def llama_server(
    python: str, models: dict[str, Path | None], folder: Path, *, n_ctx: int = 2048, threads: int = 2
) -> Iterator[Engine]:
    """`python -m llama_cpp.server` serving the bundled GGUF once per entry of `models`
    (alias → GGUF LoRA file, or None for the bare base model); the first is the default."""
    port = _free_port()
    config = {
        "host": "127.0.0.1",
        "port": port,
        "models": [
            {
                "model": str(bundled_gguf()),
                "model_alias": alias,
                "n_ctx": n_ctx,
                "n_threads": threads,
                "verbose": False,
                **({"lora_path": str(lora)} if lora is not None else {}),
            }
            for alias, lora in models.items()
        ],
    }
    config_file = folder / "llama-server.json"
    config_file.write_text(json.dumps(config, indent=2), encoding="utf-8")
    log_file = folder / "llama-server.log"
    with log_file.open("wb") as log:
        process = subprocess.Popen(
            [python, "-m", "llama_cpp.server", "--config_file", str(config_file)], stdout=log, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}/v1"
    try:
        _wait_until_up(process, url, log_file)
        yield Engine(url, tuple(models))
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.returncode not in (0, -15):
            sys.stderr.write(log_file.read_text(errors="replace")[-3000:])


def _wait_until_up(process: subprocess.Popen[bytes], url: str, log_file: Path) -> None:
    deadline = time.monotonic() + _ENGINE_START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"llama_cpp.server exited with {process.returncode}: {log_file.read_text()[-2000:]}")
        try:
            if httpx.get(f"{url}/models", timeout=2.0).is_success:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"llama_cpp.server did not answer within {_ENGINE_START_SECONDS:g} s: see {log_file}")


_LOGITS_SCRIPT = """
import json, sys
import numpy as np
from llama_cpp import Llama
gguf, lora, tokens_json, out = sys.argv[1:5]
llm = Llama(gguf, lora_path=lora or None, n_ctx=512, n_threads=2, logits_all=True, verbose=False)
llm.eval(json.loads(tokens_json))
np.save(out, np.array(llm.scores[llm.n_tokens - 1], dtype=np.float32))
"""


def engine_next_token_logits(python: str, tokens: Sequence[int], lora: Path | None, folder: Path) -> Any:
    """llama.cpp's logits for the token after `tokens` (the bundled GGUF, with GGUF LoRA `lora`)."""
    import numpy as np

    out = folder / f"logits-{'base' if lora is None else lora.stem}.npy"
    subprocess.run(
        [python, "-c", _LOGITS_SCRIPT, str(bundled_gguf()), str(lora or ""), json.dumps(list(tokens)), str(out)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return np.load(out)
