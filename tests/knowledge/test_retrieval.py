"""Retrieval over one real index (MiniLM, embedded Chroma; the catalog on SQLite with FTS5,
then on PostgreSQL): hybrid/dense/keyword, filters applied inside both indexes, at most N
chunks per document, safe keyword syntax, the reranking hook."""

from __future__ import annotations

from pathlib import Path

import pytest

from knowledge.config import RetrievalSettings
from knowledge.knowledge_base import KnowledgeBase
from knowledge.retrieval import MODES, Mode, Retriever
from knowledge.types import EVERYONE, Passage, SearchFilters, SourceFile
from tests.support.files import write_document
from tests.support.knowledge_index import CountingEmbedder, make_knowledge

HR = "group:hr"
SECRET = "the salary review budget is 4.2 million"
KEYWORD_MODES: tuple[Mode, ...] = ("keyword", "hybrid")  # the modes that read the query as words


def _page(path: Path, title: str, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"# {title}\n\n{text}\n", encoding="utf-8")


def _write_corpus(root: Path) -> dict[str, Path]:
    handbook = root / "handbook"
    _page(handbook / "benefits/leave.md", "Parental leave", "Parental leave lasts sixteen weeks at full pay.")
    write_document(handbook / "benefits/dental.docx", "dental cover includes two cleanings a year")
    write_document(handbook / "it/laptops.html", "laptops are replaced every three years")
    _page(handbook / "100%_odd/name.md", "Odd folder", "The odd folder holds the odd wombat.")
    # One long document about travel: many chunks that all match a travel question.
    sections = "\n\n".join(
        f"## Travel rule {n}\n\nTravel booking rule {n}: book travel trains and flights through the travel desk, "
        f"travel receipts go to finance within {n} days." + " More travel details follow." * 30
        for n in range(1, 9)
    )
    _page(handbook / "travel/policy.md", "Travel policy", sections)
    _page(handbook / "travel/visa.md", "Visas", "Travel visas for business trips are booked through the travel desk.")
    # Restricted: many chunks that match salary questions better than the public page.
    hr = root / "hr"
    for n in range(6):
        _page(
            hr / f"reviews/review-{n}.md",
            f"Salary review {n}",
            f"{SECRET}; salary review salary bands salary raise {n}.",
        )
    _page(handbook / "benefits/salary.md", "Pay day", "Salary is paid on the last working day of the month.")
    return {"handbook": handbook, "hr": hr}


def _permissions(file: SourceFile) -> frozenset[str]:
    return frozenset({HR}) if file.source == "hr" else frozenset({EVERYONE})


@pytest.fixture(scope="module")
def knowledge(tmp_path_factory: pytest.TempPathFactory, module_catalog_url: str | None) -> KnowledgeBase:
    root = tmp_path_factory.mktemp("retrieval")
    kb = make_knowledge(
        root / "home",
        _write_corpus(root / "docs"),
        CountingEmbedder(),
        permissions=_permissions,
        retrieval=RetrievalSettings(candidates=4, max_per_document=2),
        catalog_url=module_catalog_url,
    )
    report = kb.refresh()
    assert report.failed == [] and report.added == 13
    yield kb
    kb.close()


@pytest.fixture(scope="module")
def retriever(knowledge: KnowledgeBase) -> Retriever:
    return knowledge.retriever


def documents(passages: list[Passage]) -> list[str]:
    return [f"{p.source}/{p.path}" for p in passages]


@pytest.mark.parametrize("mode", MODES)
def test_each_mode_finds_the_answering_document_first(retriever: Retriever, mode: Mode) -> None:
    passages = retriever.search("how many weeks of parental leave", k=3, mode=mode)
    assert documents(passages)[0] == "handbook/benefits/leave.md"
    assert [p.score for p in passages] == sorted((p.score for p in passages), reverse=True)


def test_passages_carry_citation_fields(retriever: Retriever) -> None:
    best = retriever.search("dental cleanings per year", k=1)[0]
    assert best.title == "Benefits overview" and best.heading == "Benefits > Dental"
    assert best.url.startswith("file://") and best.url.endswith("/handbook/benefits/dental.docx")
    assert "two cleanings" in best.text and best.principals == frozenset({EVERYONE})
    assert 0 < best.score <= 1 and best.similarity is not None and best.similarity > 0.3


def test_keyword_only_hits_get_a_similarity_in_hybrid_mode(retriever: Retriever) -> None:
    passages = retriever.search("wombat", k=5)
    assert passages and all(p.similarity is not None for p in passages)
    assert all(p.similarity is None for p in retriever.search("wombat", k=5, mode="keyword"))


@pytest.mark.parametrize("mode", MODES)
def test_at_most_n_chunks_per_document(retriever: Retriever, mode: Mode) -> None:
    query = "travel booking rules for trains and flights"
    for cap in (1, 2, 3):
        passages = retriever.search(query, k=6, mode=mode, max_per_document=cap)
        counts = {d: documents(passages).count(d) for d in documents(passages)}
        assert counts["handbook/travel/policy.md"] == cap, (cap, counts)
    assert "handbook/travel/visa.md" in documents(retriever.search(query, k=4, max_per_document=2))


def test_source_and_path_prefix_filters(retriever: Retriever) -> None:
    for mode in MODES:
        it_only = retriever.search("parental leave laptops", k=5, filters=SearchFilters(path_prefix="it/"), mode=mode)
        assert set(documents(it_only)) == {"handbook/it/laptops.html"}
        hr_only = retriever.search("parental leave salary", k=5, filters=SearchFilters(sources=("hr",)), mode=mode)
        assert hr_only and all(p.source == "hr" for p in hr_only)
    # A prefix is a literal string: % and _ are not wildcards.
    odd = retriever.search("wombat", k=5, filters=SearchFilters(path_prefix="100%_odd/"))
    assert set(documents(odd)) == {"handbook/100%_odd/name.md"}
    assert retriever.search("wombat", k=5, filters=SearchFilters(path_prefix="100%_x")) == []
    assert retriever.search("wombat", filters=SearchFilters(path_prefix="nowhere/")) == []


@pytest.mark.parametrize("mode", MODES)
def test_restricted_chunks_never_returned_nor_push_out_readable_ones(retriever: Retriever, mode: Mode) -> None:
    query = "salary review budget"
    staff = SearchFilters(principals=frozenset({"user:bob@example.com"}))
    # candidates=4 while six restricted reviews match better: filtering after the cut would
    # leave the reader with nothing.
    passages = retriever.search(query, k=3, filters=staff, mode=mode)
    assert "handbook/benefits/salary.md" in documents(passages)
    assert all(SECRET not in p.text and p.principals == frozenset({EVERYONE}) for p in passages)
    hr = retriever.search(query, k=3, filters=SearchFilters(principals=frozenset({HR})), mode=mode)
    assert any(SECRET in p.text and p.principals == frozenset({HR}) for p in hr)
    unfiltered = retriever.search(query, k=3, mode=mode)
    assert any(SECRET in p.text for p in unfiltered)


@pytest.mark.parametrize(
    "query",
    [
        '"',
        '""',
        "AND(",
        "NEAR(salary, 3)",
        "salary*",
        "title:leave",
        "^leave",
        "-",
        "' OR 1=1 --",
        "a AND OR NOT b",
        "\\",
        "{x}",
    ],
)
def test_keyword_query_syntax_is_never_interpreted(retriever: Retriever, query: str) -> None:
    for mode in KEYWORD_MODES:
        retriever.search(query, k=3, mode=mode)


def test_stop_words_do_not_drown_the_keyword_query(retriever: Retriever) -> None:
    passages = retriever.search("how do I get my laptop replaced?", k=1, mode="keyword")
    assert documents(passages) == ["handbook/it/laptops.html"]
    assert retriever.search("   ", k=3) == [] and retriever.search("leave", k=0) == []


def test_reranker_hook_reorders_the_candidates(knowledge: KnowledgeBase) -> None:
    seen: list[int] = []

    def reverse(query: str, passages: list[Passage]) -> list[Passage]:
        seen.append(len(passages))
        return list(reversed(passages))

    plain = knowledge.retriever.search("parental leave", k=2)
    reranked = Retriever(
        knowledge.catalog, knowledge.vectors, knowledge.embedder, knowledge.retriever.settings, reranker=reverse
    ).search("parental leave", k=2)
    assert seen and seen[0] >= 2
    assert documents(reranked)[0] != documents(plain)[0]


def test_unknown_mode_is_refused(retriever: Retriever) -> None:
    with pytest.raises(ValueError, match="hybrid, dense or keyword"):
        retriever.search("leave", mode="fuzzy")  # type: ignore[arg-type]  # not a mode, on purpose


def test_fusion_counts_a_document_found_by_both_indexes_through_different_chunks() -> None:
    from knowledge.index.catalog import ChunkRecord
    from knowledge.retrieval import _fuse

    def record(chunk_id: str, path: str) -> ChunkRecord:
        return ChunkRecord(chunk_id, "s", path, 0, "", "", "", "", "acl")

    records = {
        r.chunk_id: r for r in (record("a1", "a.md"), record("a2", "a.md"), record("b1", "b.md"), record("c1", "c.md"))
    }
    dense = [("b1", 0.9), ("a1", 0.8)]  # b first by meaning
    keyword = [("c1", 9.0), ("a2", 8.0)]  # c first by words; a found through another chunk
    fused = _fuse([dense, keyword], 60, records)
    assert [chunk_id for chunk_id, _ in fused][:2] in (["a1", "a2"], ["a2", "a1"])
    assert fused[0][1] == pytest.approx((1 / 62 + 1 / 63) / (2 / 61))
    assert [chunk_id for chunk_id, _ in fused][2:] == ["b1", "c1"]
    assert _fuse([[("b1", 0.9)], [("b1", 3.0)]], 60, records) == [("b1", 1.0)]
