"""Hybrid retrieval: dense (Chroma) and keyword (the catalog's: SQLite FTS5 bm25 or PostgreSQL
full-text search) candidates fused with reciprocal-rank fusion, at most N chunks per document,
optional reranking.

Filters (source, path prefix, permissions) are applied inside both indexes, before either
cuts its candidate list, so a restricted or filtered-out chunk can neither be returned nor
push a permitted one out. Every dense hit is also checked against the catalog, the source
of truth: a vector left behind by an interrupted refresh is never returned.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any, Literal, get_args

import numpy as np

from knowledge.config import RetrievalSettings
from knowledge.embeddings import Embedder
from knowledge.index.catalog import Catalog, ChunkFilter, ChunkRecord
from knowledge.index.keyword import keyword_terms
from knowledge.index.vectors import VectorStore
from knowledge.types import Passage, SearchFilters

Mode = Literal["hybrid", "dense", "keyword"]
MODES: tuple[Mode, ...] = get_args(Mode)
Reranker = Callable[[str, list[Passage]], list[Passage]]

# `max_per_document` value meaning "every matching chunk of a document".
NO_DOCUMENT_CAP = 0

# Dense candidates asked of Chroma per candidate wanted: spare room for vectors that are
# not (yet, or any more) live in the catalog.
_OVERFETCH = 2


class Retriever:
    """Searches the index. Thread-safe, as the catalogs are (a connection per thread or per call).

    Scores: hybrid = reciprocal-rank fusion normalised so 1.0 means "ranked first by both
    indexes"; dense = cosine similarity; keyword = the catalog's relevance (higher is better).
    `Passage.similarity` is the query/passage cosine similarity in hybrid and dense mode
    (also for passages only the keyword index found), None in keyword mode."""

    def __init__(
        self,
        catalog: Catalog,
        vectors: VectorStore,
        embedder: Embedder,
        settings: RetrievalSettings,
        reranker: Reranker | None = None,
    ) -> None:
        self.catalog = catalog
        self.vectors = vectors
        self.embedder = embedder
        self.settings = settings
        self.reranker = reranker

    def search(
        self,
        query: str,
        k: int | None = None,
        filters: SearchFilters | None = None,
        *,
        mode: Mode = "hybrid",
        max_per_document: int | None = None,
    ) -> list[Passage]:
        """The `k` best passages for `query` (default: `settings.k`), best first, at most
        `max_per_document` per document (default: `settings.max_per_document`; NO_DOCUMENT_CAP:
        no cap), all passing `filters`."""
        if k is None:
            k = self.settings.k
        if mode not in MODES:
            raise ValueError(f"mode must be hybrid, dense or keyword, not {mode!r}")
        if k <= 0 or not query.strip():
            return []
        where = self._chunk_filter(filters)
        if where.acls == ():
            return []  # the reader may read nothing in the index
        readable = where.acls
        if readable is not None and self.catalog.acls_in_use() <= set(readable):
            # The reader may read every chunk: filtering inside the indexes would only cost
            # time (Chroma's metadata filter is several times slower than a plain query).
            # The result is still checked below, in case a refresh added a restricted
            # document meanwhile.
            where = replace(where, acls=None)
        per_document = max_per_document if max_per_document is not None else self.settings.max_per_document
        wanted = max(self.settings.candidates, k)
        records: dict[str, ChunkRecord] = {}
        dense: list[tuple[str, float]] = []
        embedding: np.ndarray | None = None
        if mode != "keyword":
            embedding = self.embedder.embed_query(query)
            dense = self._dense(embedding, wanted, where, per_document, records)
        keyword = self._keyword(query, wanted, where, per_document) if mode != "dense" else []
        records.update(self.catalog.chunks([chunk_id for chunk_id, _ in keyword if chunk_id not in records], where))
        if mode == "dense":
            ranked = dense
        elif mode == "keyword":
            ranked = keyword
        else:
            ranked = _fuse([dense, keyword], self.settings.rrf_k, records)
        ranked = [
            (chunk_id, score)
            for chunk_id, score in ranked
            if chunk_id in records and (readable is None or records[chunk_id].acl in readable)
        ]
        capped = _cap_per_document(ranked, records, per_document)
        pool = capped[:k] if self.reranker is None else capped[: max(k, self.settings.candidates)]
        similarities = dict(dense)
        if embedding is not None:
            similarities.update(self._similarities(embedding, [c for c, _ in pool if c not in similarities]))
        passages = self._passages(pool, records, similarities)
        return passages if self.reranker is None else self.reranker(query, passages)[:k]

    # -- candidates ----------------------------------------------------------------------

    def _dense(
        self,
        embedding: np.ndarray,
        wanted: int,
        where: ChunkFilter,
        per_document: int,
        records: dict[str, ChunkRecord],
    ) -> list[tuple[str, float]]:
        """`wanted` live candidates, at most `per_document` per file, so that one long file
        cannot fill the candidate list and hide the other documents from fusion."""
        chroma_where = self._chroma_where(where)
        if chroma_where is None:
            return []
        asked = wanted * _OVERFETCH
        while True:
            hits = self.vectors.query(embedding, asked, chroma_where or None)
            live = self.catalog.chunks([chunk_id for chunk_id, _ in hits], where)
            ranked = _cap_per_document([hit for hit in hits if hit[0] in live], live, per_document)
            # Stop when enough are left or the store has no more to give.
            if len(ranked) >= wanted or len(hits) < asked:
                records.update(live)
                return ranked[:wanted]
            asked *= 4

    def _keyword(self, query: str, wanted: int, where: ChunkFilter, per_document: int) -> list[tuple[str, float]]:
        return self.catalog.keyword_search(keyword_terms(query), wanted, where, per_document)

    def _similarities(self, embedding: np.ndarray, chunk_ids: list[str]) -> dict[str, float]:
        """Cosine similarity for chunks only the keyword index found (vectors are unit length)."""
        stored = self.vectors.embeddings(chunk_ids) if chunk_ids else {}
        return {chunk_id: float(np.dot(vector, embedding)) for chunk_id, vector in stored.items()}

    # -- filters -------------------------------------------------------------------------

    def _chunk_filter(self, filters: SearchFilters | None) -> ChunkFilter:
        if filters is None:
            return ChunkFilter()
        acls = None if filters.principals is None else self.catalog.readable_acls(frozenset(filters.principals))
        return ChunkFilter(sources=tuple(filters.sources), path_prefix=filters.path_prefix, acls=acls)

    def _chroma_where(self, where: ChunkFilter) -> dict[str, Any] | None:
        """The same filter as a Chroma `where`: {} for none, None when nothing can match."""
        clauses: list[dict[str, Any]] = []
        if where.sources:
            clauses.append({"source": {"$in": list(where.sources)}})
        if where.acls is not None:
            clauses.append({"acl": {"$in": list(where.acls)}})
        if where.path_prefix:
            # Chroma has no prefix operator for metadata: resolve the prefix to the paths
            # the catalog holds under it.
            paths = self.catalog.matching_paths(ChunkFilter(sources=where.sources, path_prefix=where.path_prefix))
            if not paths:
                return None
            clauses.append({"path": {"$in": paths}})
        if not clauses:
            return {}
        return clauses[0] if len(clauses) == 1 else {"$and": clauses}

    # -- results -------------------------------------------------------------------------

    def _passages(
        self, ranked: list[tuple[str, float]], records: dict[str, ChunkRecord], similarities: dict[str, float]
    ) -> list[Passage]:
        principals = self.catalog.principals_of(records[chunk_id].acl for chunk_id, _ in ranked)
        passages: list[Passage] = []
        for chunk_id, score in ranked:
            record = records[chunk_id]
            passages.append(
                Passage(
                    chunk_id=chunk_id,
                    source=record.source,
                    path=record.path,
                    title=record.title,
                    heading=record.heading,
                    url=record.url,
                    text=record.text,
                    score=score,
                    principals=principals.get(record.acl, frozenset()),
                    similarity=similarities.get(chunk_id),
                )
            )
        return passages


def _fuse(
    rankings: list[list[tuple[str, float]]], rrf_k: int, records: dict[str, ChunkRecord]
) -> list[tuple[str, float]]:
    """Reciprocal-rank fusion, scaled so that first place in every ranking scores 1.0.

    A candidate missing from a ranking in which another chunk of its document appears ranks
    just behind that document's best chunk there: one index often finds a document through
    one passage and the other through another, and each is evidence for the document."""
    candidates = list(dict.fromkeys(chunk_id for ranking in rankings for chunk_id, _ in ranking))
    scores: dict[str, float] = {}
    for ranking in rankings:
        chunk_rank = {chunk_id: rank for rank, (chunk_id, _) in enumerate(ranking, start=1)}
        document_rank: dict[tuple[str, str], int] = {}
        for chunk_id, first in chunk_rank.items():
            document_rank.setdefault(_document(records[chunk_id]), first)
        for chunk_id in candidates:
            rank = chunk_rank.get(chunk_id)
            if rank is None and _document(records[chunk_id]) in document_rank:
                rank = document_rank[_document(records[chunk_id])] + 1
            if rank is not None:
                scores[chunk_id] = scores.get(chunk_id, 0.0) + 1.0 / (rrf_k + rank)
    best = len(rankings) / (rrf_k + 1)
    return sorted(((chunk_id, score / best) for chunk_id, score in scores.items()), key=lambda item: -item[1])


def _document(record: ChunkRecord) -> tuple[str, str]:
    return (record.source, record.path)


def _cap_per_document(
    ranked: list[tuple[str, float]], records: dict[str, ChunkRecord], per_document: int
) -> list[tuple[str, float]]:
    """Keep at most `per_document` chunks of each document (NO_DOCUMENT_CAP or less: no cap)."""
    if per_document <= NO_DOCUMENT_CAP:
        return ranked
    counts: dict[tuple[str, str], int] = {}
    capped: list[tuple[str, float]] = []
    for chunk_id, score in ranked:
        document = (records[chunk_id].source, records[chunk_id].path)
        counts[document] = counts.get(document, 0) + 1
        if counts[document] <= per_document:
            capped.append((chunk_id, score))
    return capped
