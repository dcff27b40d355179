"""Two machines sharing one index: KnowledgeBase objects with different homes on one PostgreSQL
catalog and one real `chroma run` server. What one refreshes the other searches at once, a
permission change applies on both, two refreshes never run at once, and a refresh killed
half way on one machine leaves the index answering while the next refresh finishes."""

from __future__ import annotations

import signal
import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from knowledge.config import IndexSettings
from knowledge.errors import IndexBusyError
from knowledge.knowledge_base import KnowledgeBase
from knowledge.lock import REFRESH_LOCK, AdvisoryLock, AdvisoryLockProbe, advisory_key
from knowledge.sync import PermissionResolver
from knowledge.types import EVERYONE, SearchFilters, SourceFile
from tests.support.files import write_document
from tests.support.knowledge_index import CountingEmbedder, chroma_server, make_knowledge
from tests.support.postgres import fresh_database
from tests.support.refresh_child import FILES, start_child, versions, write_docs

pytestmark = pytest.mark.postgres


@dataclass(frozen=True)
class Shared:
    """Where the shared index lives: a fresh PostgreSQL database and a fresh collection on the
    Chroma server."""

    catalog_url: str
    index: IndexSettings

    def child_env(self) -> dict[str, str]:
        return {
            "CATALOG_URL": self.catalog_url,
            "CHROMA_PORT": str(self.index.chroma_port),
            "COLLECTION": self.index.collection,
        }


@pytest.fixture(scope="module")
def embedder() -> CountingEmbedder:
    return CountingEmbedder()


@pytest.fixture(scope="module")
def chroma_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    with chroma_server(tmp_path_factory.mktemp("chroma") / "data") as port:
        yield port


@pytest.fixture
def shared(postgres_url: str, chroma_port: int) -> Iterator[Shared]:
    with fresh_database(postgres_url) as url:
        collection = f"lore-{uuid.uuid4().hex[:8]}"
        yield Shared(url, IndexSettings(chroma_host="127.0.0.1", chroma_port=chroma_port, collection=collection))


def machine(
    home: Path, docs: Path, embedder: CountingEmbedder, shared: Shared, permissions: PermissionResolver | None = None
) -> KnowledgeBase:
    return make_knowledge(
        home, {"docs": docs}, embedder, permissions=permissions, index=shared.index, catalog_url=shared.catalog_url
    )


def paths(kb: KnowledgeBase, query: str, mode: str, principals: frozenset[str] | None = None) -> list[str]:
    filters = SearchFilters(principals=principals) if principals is not None else None
    return [p.path for p in kb.retriever.search(query, k=5, filters=filters, mode=mode)]  # type: ignore[arg-type]


@pytest.mark.parametrize("mode", ["keyword", "hybrid"])
def test_a_refresh_and_a_permission_change_on_one_machine_apply_on_the_other(
    tmp_path: Path, embedder: CountingEmbedder, shared: Shared, mode: str
) -> None:
    docs = tmp_path / "docs"
    write_document(docs / "leave.md", "parental leave lasts sixteen weeks")
    write_document(docs / "laptops.md", "laptops are replaced every three years")
    rules: dict[str, frozenset[str]] = {}

    def resolver(file: SourceFile) -> frozenset[str]:
        return rules.get(file.relative_path, frozenset({EVERYONE}))

    writer = machine(tmp_path / "a", docs, embedder, shared, resolver)
    reader = machine(tmp_path / "b", tmp_path / "b-has-no-files", embedder, shared)
    try:
        assert paths(reader, "parental leave", mode) == []
        writer.refresh()
        assert paths(reader, "parental leave weeks", mode)[0] == "leave.md"
        assert reader.status().documents == 2

        write_document(docs / "leave.md", "parental leave lasts twenty weeks")
        writer.refresh()
        found = reader.retriever.search("parental leave weeks", k=1, mode=mode)  # type: ignore[arg-type]
        assert "twenty" in found[0].text

        rules["leave.md"] = frozenset({"group:hr"})
        writer.refresh()
        anyone = frozenset({"someone@example.com"})
        assert "leave.md" not in paths(reader, "parental leave weeks", mode, anyone)
        assert paths(reader, "parental leave weeks", mode, frozenset({"group:hr"}))[0] == "leave.md"
        assert [d.path for d in reader.readable_documents(anyone)] == ["laptops.md"]
    finally:
        writer.close()
        reader.close()


def _refresh_lock_holders(url: str) -> int:
    key = advisory_key(REFRESH_LOCK)
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            return int(
                connection.execute(
                    text(
                        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1"
                        " AND classid::bigint = :high AND objid::bigint = :low"
                    ),
                    {"high": (key >> 32) & 0xFFFFFFFF, "low": key & 0xFFFFFFFF},
                ).scalar_one()
            )
    finally:
        engine.dispose()


def test_a_second_refresh_is_refused_while_another_machine_refreshes(
    tmp_path: Path, embedder: CountingEmbedder, shared: Shared
) -> None:
    docs = tmp_path / "docs"
    write_docs(docs, "alpha")
    kb = machine(tmp_path / "a", docs, embedder, shared)
    child = start_child(tmp_path / "c", docs, "slow", **shared.child_env())
    try:
        deadline = time.monotonic() + 120
        while _refresh_lock_holders(shared.catalog_url) == 0:
            assert child.poll() is None and time.monotonic() < deadline, child.stderr.read() if child.stderr else ""
            time.sleep(0.1)
        holder = f"pid {child.pid} on {socket.gethostname()}"
        with pytest.raises(IndexBusyError, match=f"another refresh is running \\({holder}\\)"):
            kb.refresh()
        stdout, stderr = child.communicate(timeout=300)
        assert child.returncode == 0, stderr
        assert f"added={FILES}" in stdout
    finally:
        if child.poll() is None:
            child.kill()
    assert kb.refresh().unchanged == FILES  # the lock is free again, and the work was shared
    kb.close()


def test_a_refresh_killed_on_one_machine_leaves_the_index_answering_and_the_next_one_finishes(
    tmp_path: Path, embedder: CountingEmbedder, shared: Shared
) -> None:
    docs = tmp_path / "docs"
    write_docs(docs, "alpha")
    first = machine(tmp_path / "a", docs, embedder, shared)
    assert first.refresh().added == FILES
    write_docs(docs, "beta")

    child = start_child(tmp_path / "c", docs, "embedding", **shared.child_env())
    _, stderr = child.communicate(timeout=300)
    assert child.returncode == -signal.SIGKILL, stderr

    # The other machine answers at once, each file fully old or fully new.
    state = versions(first)
    assert all(len(words) == 1 for words in state.values()), state
    new = sum(1 for words in state.values() if words == {"beta"})
    assert 0 < new < FILES  # the child's first batch was committed, the rest was not
    # Its lock died with it: the next refresh, from the other machine, finishes the work.
    report = first.refresh()
    assert (report.updated, report.unchanged, report.failed) == (FILES - new, new, [])
    assert all(words == {"beta"} for words in versions(first).values())
    documents, chunks = first.catalog.counts()
    assert documents == FILES and first.vectors.count() == chunks and not first.catalog.journal()
    first.close()


def test_the_advisory_lock_is_exclusive_within_a_process_and_freed_on_release(shared: Shared) -> None:
    holder = f"pid [0-9]+ on {socket.gethostname()}"
    with AdvisoryLock(shared.catalog_url), pytest.raises(IndexBusyError, match=holder):
        AdvisoryLock(shared.catalog_url).acquire()
    with AdvisoryLock(shared.catalog_url), AdvisoryLock(shared.catalog_url, "lore retraining"):
        pass  # another name is another lock


def test_the_probe_sees_a_refresh_lock_held_anywhere_without_taking_it(shared: Shared) -> None:
    """An embedded vector store waits for a refresh holding the database's lock before it
    re-reads the store (KnowledgeBase._refreshing_elsewhere); looking never takes the lock."""
    probe, other_name = AdvisoryLockProbe(shared.catalog_url), AdvisoryLockProbe(shared.catalog_url, "lore retraining")
    try:
        assert not probe.held()
        with AdvisoryLock(shared.catalog_url):
            assert probe.held()
            assert not other_name.held()
        assert not probe.held()
        with AdvisoryLock(shared.catalog_url):  # looking left it free to take
            pass
    finally:
        probe.close()
        other_name.close()
