"""The Embedder with the real bundled MiniLM: the onnxruntime path must give the vectors
sentence-transformers gives, for what the model should read, each distinct text once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from knowledge.embeddings import Embedder, _length_batches, embedding_text
from knowledge.errors import ConfigurationError

LONG = " ".join(f"Paragraph {i} explains how expense reports are filed and approved." for i in range(60))
TEXTS = [
    "How many vacation days do I get?",
    "Benefits > Parental leave\nNew parents get **16 weeks** of paid leave. See [the policy](https://example.com/leave).",
    LONG,  # longer than the model's 256 tokens: truncated the same way on both paths
    "| Plan | Cost |\n|---|---|\n| Basic | $0 |",
    "x",
]


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("embedding-cache")


@pytest.fixture(scope="module")
def embedder(cache_dir: Path) -> Embedder:
    return Embedder(cache_dir=cache_dir, threads=2)


def test_markup_that_only_costs_tokens_is_not_embedded() -> None:
    text = (
        "Intro with a link https://example.com/a/very/long/path?x=1 and <a href='x'>a tag</a>.\n"
        "* first **bold** item\n"
        "1. numbered __strong__ item\n"
        "| Plan | Cost |\n| --- | :---: |\n| Basic | $0 |\n"
        "```python\nprint('hi')\n```"
    )
    view = embedding_text(text)
    assert "http" not in view and "<a" not in view and "|" not in view and "```" not in view and "**" not in view
    assert "---" not in view
    for words in (
        "Intro with a link",
        "a tag",
        "first bold item",
        "numbered strong item",
        "Plan",
        "Basic $0",
        "print('hi')",
    ):
        assert words in view


def test_plain_prose_is_embedded_as_it_is() -> None:
    assert embedding_text("Expenses over $500 need a manager's approval - ask first.") == (
        "Expenses over $500 need a manager's approval - ask first."
    )


def test_onnx_vectors_match_sentence_transformers(embedder: Embedder) -> None:
    assert embedder.backend == "onnx"
    vectors = embedder.embed_documents(TEXTS)
    expected = embedder._model.encode([embedding_text(t) for t in TEXTS], normalize_embeddings=True)
    assert vectors.shape == (len(TEXTS), embedder.dimension) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert (vectors * expected).sum(axis=1).min() > 0.9999


def test_torch_backend_gives_the_same_vectors(embedder: Embedder, cache_dir: Path) -> None:
    torch_embedder = Embedder(backend="torch", cache_dir=cache_dir)
    assert torch_embedder.backend == "torch"
    similarity = (torch_embedder.embed_documents(TEXTS) * embedder.embed_documents(TEXTS)).sum(axis=1)
    assert similarity.min() > 0.9999


def test_rows_follow_input_order_and_queries_match_documents(embedder: Embedder) -> None:
    together = embedder.embed_documents(TEXTS)
    for text, row in zip(TEXTS, together, strict=True):
        assert float(np.dot(embedder.embed_query(text), row)) > 0.9999


def test_each_distinct_text_is_embedded_once(embedder: Embedder, cache_dir: Path) -> None:
    class Recording(Embedder):
        def __init__(self) -> None:
            super().__init__(cache_dir=cache_dir)
            self.encoded: list[list[str]] = []

        def _encode(self, texts: list[str], show_progress: bool) -> np.ndarray:
            self.encoded.append(texts)
            return super()._encode(texts, show_progress)

    recording = Recording()
    # The second text differs only in markup the model does not read.
    vectors = recording.embed_documents(["Time off policy", "**Time off** policy", "Time off policy", "Payroll"])
    assert recording.encoded == [["Time off policy", "Payroll"]]
    assert np.array_equal(vectors[0], vectors[1]) and np.array_equal(vectors[0], vectors[2])
    assert not np.array_equal(vectors[0], vectors[3])


def test_count_tokens_counts_what_the_model_reads(embedder: Embedder) -> None:
    text = "Read the guide at https://handbook.example.com/engineering/onboarding/first-week-checklist.html"
    assert embedder.count_tokens(text) == embedder.count_tokens("Read the guide at")
    assert embedder.count_tokens(text) < len(embedder.tokenizer.encode(text, add_special_tokens=False))


def test_empty_input(embedder: Embedder) -> None:
    assert embedder.embed_documents([]).shape == (0, embedder.dimension)


def test_the_onnx_graph_is_exported_once_and_reused(cache_dir: Path, embedder: Embedder) -> None:
    graphs = list((cache_dir / "onnx").iterdir())
    assert len(graphs) == 1 and graphs[0].suffix == ".onnx"  # no partial files left behind
    mtime = graphs[0].stat().st_mtime_ns
    again = Embedder(cache_dir=cache_dir)
    assert again.backend == "onnx"
    assert [g.stat().st_mtime_ns for g in (cache_dir / "onnx").iterdir()] == [mtime]


def test_bad_settings_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="does not exist"):
        Embedder(tmp_path / "missing", cache_dir=tmp_path)
    with pytest.raises(ConfigurationError, match="at least 1"):
        Embedder(batch_size=0, cache_dir=tmp_path)


# The machine running the suite is shared: time limits would test its load, not the code.
@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    lengths=st.lists(st.integers(min_value=1, max_value=256), max_size=100),
    max_texts=st.integers(min_value=1, max_value=64),
    budget=st.integers(min_value=1, max_value=2048),
)
def test_length_batches_cover_every_text_once_within_limits(lengths: list[int], max_texts: int, budget: int) -> None:
    batches = list(_length_batches(lengths, max_texts, budget))
    assert sorted(i for batch in batches for i in batch) == list(range(len(lengths)))
    for batch in batches:
        assert 1 <= len(batch) <= max_texts
        width = max(lengths[i] for i in batch)
        assert len(batch) == 1 or len(batch) * width <= budget
        assert lengths[batch[0]] == width  # longest first: the first text sets the width
    flat: Iterator[int] = (lengths[i] for batch in batches for i in batch)
    ordered = list(flat)
    assert ordered == sorted(ordered, reverse=True)
