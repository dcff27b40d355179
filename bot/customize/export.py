"""An adapter from the registry in the format an OpenAI-compatible engine serves it from.

`gguf`: one file `<name>.gguf` for llama.cpp (`llama-server --lora`, `llama_cpp.server`'s
`lora_path`). `peft`: a copy of the peft folder (adapter_config.json, adapter_model.safetensors
and lore.json) for vLLM (`--enable-lora --lora-modules <name>=<folder>`), to carry to the
machine that serves it. Either way the adapter is first checked against the base model it
was trained on, since an engine applies it to any base with matching shapes without a word.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from bot.model.adapters import METADATA_FILE, PEFT_CONFIG_FILE, AdapterRegistry, check_adapter_base
from bot.model.gguf_lora import write_gguf_lora
from bot.model.weights import base_model_fingerprint

ExportFormat = Literal["gguf", "peft"]
EXPORT_FORMATS: tuple[ExportFormat, ...] = ("gguf", "peft")
_PEFT_FILES = (PEFT_CONFIG_FILE, "adapter_model.safetensors", METADATA_FILE)


@dataclass(frozen=True)
class ExportedAdapter:
    """Where adapter `name` was written, and in which format."""

    name: str
    format: ExportFormat
    path: Path  # the .gguf file, or the peft folder


def export_adapter(
    registry: AdapterRegistry,
    name: str,
    base_folder: Path,
    base_name: str,
    export_format: ExportFormat,
    out_dir: Path,
) -> ExportedAdapter:
    """Write adapter `name`, trained on the model in `base_folder`, to `out_dir` in `export_format`.

    AdapterMismatchError when it was trained on another base model.
    """
    info = registry.info(name)
    check_adapter_base(info, base_folder, base_name, lambda: base_model_fingerprint(base_folder))
    if export_format == "gguf":
        written = write_gguf_lora(info.path, base_folder, out_dir / f"{name}.gguf")
        return ExportedAdapter(name, export_format, written.path)
    target = out_dir / name
    out_dir.mkdir(parents=True, exist_ok=True)
    # Copied beside the target and renamed: a reader never sees half a folder.
    partial = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".partial", dir=out_dir))
    try:
        for file_name in _PEFT_FILES:
            if (info.path / file_name).is_file():
                shutil.copy2(info.path / file_name, partial / file_name)
        partial.chmod(0o755)
        if target.exists():
            shutil.rmtree(target)
        partial.rename(target)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return ExportedAdapter(name, export_format, target)
