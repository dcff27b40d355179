"""Real sync cycles over real files, the real MiniLM embedder and embedded Chroma, with the
catalog on SQLite and on PostgreSQL: add, unchanged, touch, edit, delete, rename, corrupt,
permissions, unmounted share, full rebuild."""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from knowledge.config import FolderSourceSettings
from knowledge.index.vectors import VectorMetadata
from knowledge.knowledge_base import KnowledgeBase
from knowledge.types import EVERYONE, SearchFilters, SourceFile
from tests.support.files import PHRASES, write_broken_files, write_document, write_every_format
from tests.support.knowledge_index import CountingEmbedder, CountingSource, make_knowledge

# About parsing, listing or the vector store, not the catalog: on SQLite only (CI time).
SQLITE_ONLY = pytest.mark.parametrize("catalog_url", [None], ids=["sqlite"])


@pytest.fixture(scope="module")
def embedder() -> CountingEmbedder:
    return CountingEmbedder()


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    folder = tmp_path / "docs"
    write_document(folder / "handbook/leave.md", "parental leave lasts sixteen weeks")
    write_document(folder / "handbook/expenses.txt", "expense reports are due on the fifth")
    write_document(folder / "it/laptops.html", "laptops are replaced every three years")
    return folder


@pytest.fixture
def knowledge(tmp_path: Path, docs: Path, embedder: CountingEmbedder, catalog_url: str | None) -> KnowledgeBase:
    kb = make_knowledge(tmp_path / "home", {"docs": docs}, embedder, catalog_url=catalog_url)
    kb.refresh()
    embedder.take()
    yield kb
    kb.close()


def paths_for(kb: KnowledgeBase, query: str, k: int = 3) -> list[str]:
    """Documents the keyword index finds for `query`, best first."""
    return list(dict.fromkeys(p.path for p in kb.retriever.search(query, k=k, mode="keyword")))


def assert_consistent(kb: KnowledgeBase) -> None:
    """Catalog and vector store hold exactly the same chunks."""
    assert kb.vectors.count() == kb.catalog.counts()[1]
    assert kb.vectors.all_ids() == kb.catalog.live_ids(sorted(kb.vectors.all_ids()))
    assert not kb.catalog.journal()


def refresh_counting(kb: KnowledgeBase, folder: Path, full: bool = False) -> tuple[dict, list[str]]:
    source = CountingSource(FolderSourceSettings(name="docs", path=folder))
    report = kb.refresh_sources([source], full=full)
    return report.to_dict(), source.reads


@SQLITE_ONLY
def test_every_format_is_indexed_and_broken_files_are_reported(
    tmp_path: Path, embedder: CountingEmbedder, catalog_url: str | None
) -> None:
    folder = tmp_path / "all"
    write_every_format(folder)
    broken = write_broken_files(folder / "broken")
    kb = make_knowledge(tmp_path / "home", {"all": folder}, embedder, catalog_url=catalog_url)
    report = kb.refresh()
    assert (report.added, report.skipped) == (10, 2)
    failed = {Path(f.path).name: f.reason for f in report.failed}
    assert set(failed) == {broken[key].name for key in ("corrupt_pdf", "encrypted_pdf", "truncated_docx")}
    assert all(reason for reason in failed.values())
    for suffix, phrase in PHRASES.items():
        assert kb.retriever.search(phrase, k=1)[0].path == f"sample{suffix}", suffix
    assert kb.status().documents == 10
    assert kb.status().last_refresh_at is not None
    assert_consistent(kb)
    kb.close()


def test_unchanged_files_are_not_read_nor_embedded(
    knowledge: KnowledgeBase, docs: Path, embedder: CountingEmbedder
) -> None:
    report, reads = refresh_counting(knowledge, docs)
    assert report["unchanged"] == 3 and report["added"] == report["updated"] == report["deleted"] == 0
    assert reads == []
    assert embedder.take() == []


def test_touched_file_is_read_but_not_reembedded(
    knowledge: KnowledgeBase, docs: Path, embedder: CountingEmbedder
) -> None:
    path = docs / "handbook/leave.md"
    os.utime(path, (path.stat().st_atime, path.stat().st_mtime + 100))
    report, reads = refresh_counting(knowledge, docs)
    assert reads == ["handbook/leave.md"]
    assert report["unchanged"] == 3
    assert embedder.take() == []
    report, reads = refresh_counting(knowledge, docs)
    assert reads == []  # the new mtime was recorded


def test_edit_reembeds_only_new_text(knowledge: KnowledgeBase, docs: Path, embedder: CountingEmbedder) -> None:
    path = docs / "handbook/leave.md"
    path.write_text(path.read_text().replace("parental leave lasts sixteen weeks", "parental leave lasts twenty weeks"))
    report = knowledge.refresh()
    assert (report.updated, report.unchanged) == (1, 2)
    embedded = embedder.take()
    assert embedded and all("twenty weeks" in text for text in embedded)
    assert paths_for(knowledge, "twenty weeks") == ["handbook/leave.md"]
    assert paths_for(knowledge, "sixteen") == []
    assert_consistent(knowledge)


def test_deleted_file_leaves_both_indexes(knowledge: KnowledgeBase, docs: Path) -> None:
    (docs / "it/laptops.html").unlink()
    report = knowledge.refresh()
    assert (report.deleted, report.unchanged) == (1, 2)
    assert paths_for(knowledge, "laptops replaced") == []
    dense = knowledge.retriever.search("when are laptops replaced", k=10, mode="dense")
    assert all(p.path != "it/laptops.html" for p in dense)
    assert_consistent(knowledge)


def test_rename_does_not_reembed(knowledge: KnowledgeBase, docs: Path, embedder: CountingEmbedder) -> None:
    (docs / "finance").mkdir()
    shutil.move(docs / "handbook/expenses.txt", docs / "finance/expenses.txt")
    report = knowledge.refresh()
    assert (report.added, report.deleted, report.unchanged) == (1, 1, 2)
    assert embedder.take() == []
    hit = knowledge.retriever.search("when are expense reports due", k=1)[0]
    assert hit.path == "finance/expenses.txt"
    assert hit.url.endswith("/docs/finance/expenses.txt")
    assert_consistent(knowledge)


def test_corrupted_file_keeps_previous_version_and_is_reported(knowledge: KnowledgeBase, docs: Path) -> None:
    write_document(docs / "handbook/policy.docx", "the dental plan covers two cleanings")
    assert knowledge.refresh().added == 1
    path = docs / "handbook/policy.docx"
    path.write_bytes(path.read_bytes()[:500])  # truncated by a failed copy
    report = knowledge.refresh()
    assert [Path(f.path).name for f in report.failed] == ["policy.docx"]
    assert "zip" in report.failed[0].reason.lower()
    assert report.deleted == 0
    assert paths_for(knowledge, "dental cleanings") == ["handbook/policy.docx"]
    write_document(path, "the dental plan covers three cleanings")
    report = knowledge.refresh()
    assert (report.updated, report.failed) == (1, [])
    assert knowledge.retriever.search("dental cleanings", k=1)[0].text.count("three cleanings") == 1


def test_permission_change_updates_principals_without_reembedding(
    tmp_path: Path, docs: Path, embedder: CountingEmbedder, catalog_url: str | None
) -> None:
    rules: dict[str, frozenset[str]] = {}

    def resolver(file: SourceFile) -> frozenset[str]:
        return rules.get(file.relative_path, frozenset({EVERYONE}))

    kb = make_knowledge(tmp_path / "home", {"docs": docs}, embedder, permissions=resolver, catalog_url=catalog_url)
    kb.refresh()
    embedder.take()
    hr = SearchFilters(principals=frozenset({"group:hr"}))
    staff = SearchFilters(principals=frozenset({"user:bob@example.com"}))
    assert "handbook/leave.md" in [p.path for p in kb.retriever.search("parental leave", filters=staff)]

    rules["handbook/leave.md"] = frozenset({"group:hr"})
    report = kb.refresh()
    assert (report.updated, report.unchanged) == (1, 2)
    assert embedder.take() == []
    for mode in ("hybrid", "dense", "keyword"):
        assert "handbook/leave.md" not in [
            p.path for p in kb.retriever.search("parental leave", k=10, filters=staff, mode=mode)
        ]
    restricted = [p for p in kb.retriever.search("parental leave", filters=hr) if p.path == "handbook/leave.md"]
    assert restricted and restricted[0].principals == frozenset({"group:hr"})
    # Vector metadata follows the catalog.
    chunk_ids = kb.catalog.file_chunk_ids("docs", "handbook/leave.md")
    acls = {m["acl"] for m in kb.vectors._collection.get(ids=chunk_ids, include=["metadatas"])["metadatas"]}
    assert acls == {kb.catalog.files()[("docs", "handbook/leave.md")].acl}
    kb.close()


@SQLITE_ONLY
def test_unmounted_source_is_reported_and_nothing_is_deleted(knowledge: KnowledgeBase, docs: Path) -> None:
    moved = docs.with_name("unmounted")
    docs.rename(moved)
    report = knowledge.refresh()
    assert report.deleted == 0 and [f.path for f in report.failed] == ["docs"]
    assert "does not exist" in report.failed[0].reason
    assert knowledge.status().documents == 3


@SQLITE_ONLY
@pytest.mark.parametrize("folder", ["it", "."])
def test_a_folder_failing_to_list_is_reported_and_its_files_stay_indexed(
    knowledge: KnowledgeBase, docs: Path, folder: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import knowledge.sources.filesystem as filesystem

    # An I/O error (a flaky share) is not a decision about who may read: the files stay.
    # (A refusal of Lore's account withdraws them: tests/permissions/test_narrowing.py.)
    unreadable = (docs / folder).resolve()
    real_scandir = os.scandir

    def scandir(path: object) -> object:
        if Path(str(path)).resolve() == unreadable:
            raise OSError(errno.EIO, "Input/output error")
        return real_scandir(path)

    monkeypatch.setattr(filesystem.os, "scandir", scandir)
    report, _ = refresh_counting(knowledge, docs)
    assert report["deleted"] == 0
    assert [(f["path"], f["reason"]) for f in report["failed"]] == [(f"docs:{folder}", "Input/output error")]
    assert paths_for(knowledge, "laptops replaced") == ["it/laptops.html"]
    monkeypatch.undo()
    (docs / "it/laptops.html").unlink()  # readable again: now a real deletion is seen
    report, _ = refresh_counting(knowledge, docs)
    assert report["deleted"] == 1 and report["failed"] == []
    assert paths_for(knowledge, "laptops replaced") == []


def test_full_refresh_reembeds_everything(knowledge: KnowledgeBase, docs: Path, embedder: CountingEmbedder) -> None:
    before = knowledge.catalog.counts()
    report, reads = refresh_counting(knowledge, docs, full=True)
    assert report["updated"] == 3 and sorted(reads) == sorted(
        ["handbook/leave.md", "handbook/expenses.txt", "it/laptops.html"]
    )
    assert len(embedder.take()) == before[1]
    assert knowledge.catalog.counts() == before
    assert_consistent(knowledge)


def test_leftovers_of_an_interrupted_write_are_removed(knowledge: KnowledgeBase, embedder: CountingEmbedder) -> None:
    """Vectors written before a crash (pending) or not yet deleted after one (garbage)
    are cleaned by the next refresh and never returned meanwhile."""
    query = "how long is parental leave"
    vector = embedder.embed_query(query)[None, :]
    knowledge.catalog.mark_pending(["orphan-pending"])
    knowledge.vectors.upsert(["orphan-pending"], vector, [VectorMetadata("docs", "handbook/leave.md", "x")])
    knowledge.vectors.upsert(["orphan-unjournaled"], vector, [VectorMetadata("docs", "handbook/leave.md", "x")])
    hits = knowledge.retriever.search(query, k=5, mode="dense")
    assert hits and not {p.chunk_id for p in hits} & {"orphan-pending", "orphan-unjournaled"}
    knowledge.refresh()
    assert "orphan-pending" not in knowledge.vectors.all_ids()
    knowledge.refresh(full=True)  # a full refresh also sweeps vectors no journal knows
    assert_consistent(knowledge)


def test_embedding_reused_for_identical_text_across_files(
    knowledge: KnowledgeBase, docs: Path, embedder: CountingEmbedder
) -> None:
    shutil.copy(docs / "it/laptops.html", docs / "it/laptops-copy.html")
    report = knowledge.refresh()
    assert report.added == 1
    assert embedder.take() == []
    original = knowledge.catalog.file_chunk_ids("docs", "it/laptops.html")
    copy = knowledge.catalog.file_chunk_ids("docs", "it/laptops-copy.html")
    stored = knowledge.vectors.embeddings(original + copy)
    assert len(copy) == len(original) and not set(copy) & set(original)
    for first, second in zip(original, copy, strict=True):
        assert np.allclose(stored[first], stored[second])


@SQLITE_ONLY
def test_lost_vectors_are_rebuilt(knowledge: KnowledgeBase, embedder: CountingEmbedder) -> None:
    """A vector store that lost its vectors (server reset, folder deleted) is refilled."""
    knowledge.vectors.reset()
    report = knowledge.refresh()
    assert report.updated == 3 and len(embedder.take()) == knowledge.catalog.counts()[1]
    assert knowledge.retriever.search("when are laptops replaced", k=1, mode="dense")[0].path == "it/laptops.html"
    assert_consistent(knowledge)


def test_documents_readable_by_a_reader(
    tmp_path: Path, docs: Path, embedder: CountingEmbedder, catalog_url: str | None
) -> None:
    def resolver(file: SourceFile) -> frozenset[str]:
        return frozenset({"group:it"}) if file.relative_path.startswith("it/") else frozenset({EVERYONE})

    kb = make_knowledge(tmp_path / "home", {"docs": docs}, embedder, permissions=resolver, catalog_url=catalog_url)
    kb.refresh()
    public = {record.path for record in kb.readable_documents(frozenset({EVERYONE}))}
    assert public == {"handbook/leave.md", "handbook/expenses.txt"}
    assert len(kb.readable_documents(frozenset({"group:it"}))) == 3
    kb.close()


def test_a_documents_passages_come_in_reading_order_with_their_readers(
    tmp_path: Path, docs: Path, embedder: CountingEmbedder, catalog_url: str | None
) -> None:
    def resolver(file: SourceFile) -> frozenset[str]:
        return frozenset({"group:it"}) if file.relative_path.startswith("it/") else frozenset({EVERYONE})

    kb = make_knowledge(tmp_path / "home", {"docs": docs}, embedder, permissions=resolver, catalog_url=catalog_url)
    kb.refresh()
    assert {(record.source, record.path) for record in kb.documents()} == {
        ("docs", "handbook/leave.md"),
        ("docs", "handbook/expenses.txt"),
        ("docs", "it/laptops.html"),
    }
    passages = kb.document_passages("docs", "it/laptops.html")
    assert [p.chunk_id for p in passages] == kb.catalog.file_chunk_ids("docs", "it/laptops.html") != []
    assert {p.principals for p in passages} == {frozenset({"group:it"})}
    assert all(p.path == "it/laptops.html" and p.text for p in passages)
    assert kb.document_passages("docs", "it/nothing-here.md") == []
    kb.close()


def test_each_refresh_reports_its_progress_and_keeps_its_report(knowledge: KnowledgeBase, docs: Path) -> None:
    """Whoever refreshes (the schedule, `lore index`, the console) leaves its report where the
    console's Overview reads it, and a caller can follow the files as they go."""
    assert knowledge.last_report() is not None  # the fixture's first refresh
    (docs / "new.md").write_text("# New\n\nthe new page says hello.\n")
    seen: list[tuple[int, int]] = []

    report = knowledge.refresh(progress=lambda done, total: seen.append((done, total)))

    assert knowledge.last_report() == report.to_dict()
    assert report.added == 1
    total = seen[-1][1]
    assert seen == [(done, total) for done in range(1, total + 1)]
