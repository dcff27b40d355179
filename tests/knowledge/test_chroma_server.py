"""The same sync cycle and searches against a real Chroma server (`chroma run` on loopback)."""

from __future__ import annotations

from pathlib import Path

import pytest

from knowledge.config import IndexSettings
from knowledge.errors import IndexUnavailableError
from knowledge.retrieval import MODES
from knowledge.types import EVERYONE, SearchFilters, SourceFile
from tests.support.chroma_server import ChromaServer, chroma_server  # noqa: F401  (fixture)
from tests.support.files import write_document
from tests.support.knowledge_index import CountingEmbedder, free_port, make_knowledge


@pytest.fixture(scope="module")
def embedder() -> CountingEmbedder:
    return CountingEmbedder()


def test_sync_cycle_and_search_against_a_chroma_server(
    tmp_path: Path,
    chroma_server: ChromaServer,  # noqa: F811
    embedder: CountingEmbedder,
) -> None:
    docs = tmp_path / "docs"
    write_document(docs / "benefits/leave.md", "parental leave lasts sixteen weeks")
    write_document(docs / "it/laptops.html", "laptops are replaced every three years")
    write_document(docs / "hr/salaries.txt", "the salary review budget is secret")

    def permissions(file: SourceFile) -> frozenset[str]:
        return frozenset({"group:hr"}) if file.relative_path.startswith("hr/") else frozenset({EVERYONE})

    index = chroma_server.index_settings()
    kb = make_knowledge(tmp_path / "home", {"docs": docs}, embedder, permissions=permissions, index=index)
    assert not (tmp_path / "home/index/chroma").exists()  # vectors live in the server

    assert kb.refresh().added == 3
    assert kb.vectors.count() == kb.catalog.counts()[1]
    assert kb.retriever.search("how long is parental leave", k=1)[0].path == "benefits/leave.md"

    # edit, rename, delete
    (docs / "benefits/leave.md").write_text("# Leave\n\nParental leave lasts twenty weeks.\n")
    (docs / "it").rename(docs / "tech")
    (docs / "hr/salaries.txt").unlink()
    embedder.take()
    report = kb.refresh()
    assert (report.added, report.updated, report.deleted) == (1, 1, 2)
    assert embedder.take() == ["Leave\nParental leave lasts twenty weeks."]
    for mode in MODES:
        paths = {p.path for p in kb.retriever.search("laptops replaced parental leave", k=5, mode=mode)}
        assert paths == {"tech/laptops.html", "benefits/leave.md"}, mode
    hit = kb.retriever.search("how long is parental leave", k=1, filters=SearchFilters(path_prefix="benefits/"))[0]
    assert "twenty weeks" in hit.text
    assert kb.vectors.count() == kb.catalog.counts()[1]
    kb.close()


def test_permission_filter_inside_the_server(
    tmp_path: Path,
    chroma_server: ChromaServer,  # noqa: F811
    embedder: CountingEmbedder,
) -> None:
    docs = tmp_path / "docs"
    write_document(docs / "hr/salaries.txt", "the salary review budget is 4 million")
    write_document(docs / "pay.txt", "salary is paid monthly")

    def permissions(file: SourceFile) -> frozenset[str]:
        return frozenset({"group:hr"}) if file.relative_path.startswith("hr/") else frozenset({EVERYONE})

    index = chroma_server.index_settings()
    kb = make_knowledge(tmp_path / "home", {"docs": docs}, embedder, permissions=permissions, index=index)
    kb.refresh()
    staff = SearchFilters(principals=frozenset({"user:bob@example.com"}))
    assert {p.path for p in kb.retriever.search("salary review budget", k=5, filters=staff, mode="dense")} == {
        "pay.txt"
    }
    hr = SearchFilters(principals=frozenset({"group:hr"}))
    assert "hr/salaries.txt" in {
        p.path for p in kb.retriever.search("salary review budget", k=5, filters=hr, mode="dense")
    }
    kb.close()


def test_unreachable_server_is_a_clear_error(tmp_path: Path, embedder: CountingEmbedder) -> None:
    index = IndexSettings(chroma_host="127.0.0.1", chroma_port=free_port())
    with pytest.raises(IndexUnavailableError, match="Start the Chroma server"):
        make_knowledge(tmp_path / "home", {"docs": tmp_path}, embedder, index=index)
