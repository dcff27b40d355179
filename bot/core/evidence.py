"""Evidence: the one to three sentences of the given passages that best answer the question,
quoted verbatim beneath a model's written answer (small models paraphrase badly), and the
sentence scorers that excerpts (`bot.core.excerpt`) use too.

Two ways to score a sentence against the question:
- `OverlapScorer`: IDF-weighted overlap of content-word stems, the IDF taken over the candidate
  sentences, so the page's topic word (in every sentence) counts little and rarer question
  words decide. No model needed; blind to synonyms ("vacation" vs "paid time off").
- `EmbeddingScorer`: cosine similarity of sentence and question embeddings (the index's own
  embedder) plus a small overlap bonus that breaks ties towards sentences sharing the words.
The agent uses the embedding scorer when it has an embedder (see benchmarks/answer_quality.py
for the comparison on real questions)."""

from __future__ import annotations

import math
import threading
from collections import Counter, OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from bot.core.text import content_terms, split_sentences
from knowledge.types import Passage

MAX_QUOTE_CHARS = 400  # longer "sentences" are table rows or run-on lists: poor quotes
MIN_QUOTE_WORDS = 3


@dataclass(frozen=True)
class Quote:
    number: int  # the passage's number in the prompt
    passage: Passage
    sentence: str
    score: float


class SentenceScorer(Protocol):
    # A second or third quote is kept only when it scores at least this share of the best one.
    keep_ratio: float

    def score(self, question: str, sentences: Sequence[str]) -> list[float]:
        """How well each sentence answers `question` (higher is better)."""


class OverlapScorer:
    keep_ratio = 0.5

    def score(self, question: str, sentences: Sequence[str]) -> list[float]:
        asked = set(content_terms(question))
        terms = [set(content_terms(sentence)) for sentence in sentences]
        frequency = Counter(term for found in terms for term in found)
        total = len(sentences)
        return [sum(math.log(1 + total / frequency[term]) for term in asked & found) for found in terms]


class TextEmbedder(Protocol):
    """What the agent needs of `knowledge.embeddings.Embedder`: unit vectors."""

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray: ...

    def embed_query(self, text: str) -> np.ndarray: ...


class RecentSentenceVectors:
    """An embedder that remembers the vectors of the last `capacity` texts it embedded as
    documents. The agent embeds the top passages' sentences to judge evidence strength, then
    the same sentences again to pick the quotes (about 0.28 s for 25 sentences on 2 cores): with
    this, each is embedded once. Thread-safe; queries are not remembered (one per call)."""

    def __init__(self, embedder: TextEmbedder, capacity: int = 4096) -> None:
        self._embedder = embedder
        self._capacity = capacity
        self._vectors: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        with self._lock:
            found = {text: self._vectors[text] for text in texts if text in self._vectors}
            for text in found:
                self._vectors.move_to_end(text)
        missing = [text for text in dict.fromkeys(texts) if text not in found]
        if missing:
            fresh = dict(zip(missing, self._embedder.embed_documents(missing), strict=True))
            found.update(fresh)
            with self._lock:
                self._vectors.update(fresh)
                while len(self._vectors) > self._capacity:
                    self._vectors.popitem(last=False)
        return np.stack([found[text] for text in texts])

    def embed_query(self, text: str) -> np.ndarray:
        return self._embedder.embed_query(text)


class EmbeddingScorer:
    keep_ratio = 0.85
    OVERLAP_WEIGHT = 0.05  # per matched content word, capped by the question's length

    def __init__(self, embedder: TextEmbedder) -> None:
        self.embedder = embedder

    def score(self, question: str, sentences: Sequence[str]) -> list[float]:
        asked = set(content_terms(question))
        vectors = self.embedder.embed_documents(list(sentences))
        cosines = vectors @ self.embedder.embed_query(question)
        bonus = [
            self.OVERLAP_WEIGHT * len(asked & set(content_terms(sentence))) / max(len(asked), 1)
            for sentence in sentences
        ]
        return [float(cosine) + extra for cosine, extra in zip(cosines, bonus, strict=True)]


def select_evidence(
    question: str,
    numbered: Sequence[tuple[int, Passage]],
    limit: int = 3,
    scorer: SentenceScorer | None = None,
) -> list[Quote]:
    """The best-matching sentences of `numbered` passages, best first, at most `limit`, each a
    verbatim substring of its passage; further quotes only when close to the best one. They
    back a model's written answer; when there is none, excerpts (`bot.core.excerpt`) are the
    answer."""
    scorer = scorer or OverlapScorer()
    candidates = [
        (number, passage, sentence)
        for number, passage in numbered
        for sentence in dict.fromkeys(split_sentences(passage.text))
        if len(sentence) <= MAX_QUOTE_CHARS and len(sentence.split()) >= MIN_QUOTE_WORDS
    ]
    if not candidates:
        return []
    scores = scorer.score(question, [sentence for _, _, sentence in candidates])
    quotes = [
        # Prefer the passage retrieval ranked higher when sentences tie.
        Quote(number, passage, sentence, score - 0.001 * number)
        for (number, passage, sentence), score in zip(candidates, scores, strict=True)
    ]
    quotes.sort(key=lambda quote: quote.score, reverse=True)
    best = quotes[0].score
    chosen: list[Quote] = []
    seen: set[str] = set()
    for quote in quotes:
        if chosen and (len(chosen) == limit or quote.score <= 0 or quote.score < best * scorer.keep_ratio):
            break
        if quote.sentence not in seen:
            seen.add(quote.sentence)
            chosen.append(quote)
    return chosen


def keyword_coverage(question: str, text: str) -> float:
    """The share of the question's content terms that `text` contains (0 when it has none)."""
    asked = set(content_terms(question))
    if not asked:
        return 0.0
    return len(asked & set(content_terms(text))) / len(asked)
