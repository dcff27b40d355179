"""A refresh killed (SIGKILL) half way leaves the previous index answering correctly and the
next refresh finishes the work; two refreshes never run at once, across processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from knowledge.errors import IndexBusyError
from knowledge.knowledge_base import KnowledgeBase
from knowledge.lock import RefreshLock
from tests.support.knowledge_index import CountingEmbedder, make_knowledge

PROJECT = Path(__file__).resolve().parents[2]
FILES = 100

# Runs one refresh in a child process over the same home and folder. FAULT says where the
# child kills itself with SIGKILL (no cleanup of any kind runs):
#   embedding      - inside the second embedding batch (the first batch is committed)
#   after_upsert   - right after the second batch's vectors reach Chroma, before the catalog
#   before_delete  - after a catalog switch, before the freed vectors are deleted
#   slow           - no kill: every embedding batch takes 2 s longer (for the lock test)
# Its embedder batch size of 4 makes refreshes commit every 64 chunks: several batches here.
CHILD = textwrap.dedent(
    """
    import os, signal, sys, time
    from pathlib import Path
    sys.path.insert(0, os.environ["PROJECT"])
    from knowledge.embeddings import Embedder
    from knowledge.index.vectors import VectorStore
    from tests.support.knowledge_index import make_knowledge

    fault = os.environ["FAULT"]
    calls = {"embed": 0, "upsert": 0}

    def die():
        os.kill(os.getpid(), signal.SIGKILL)

    class FaultyEmbedder(Embedder):
        def embed_documents(self, texts, show_progress=False):
            calls["embed"] += 1
            if fault == "embedding" and calls["embed"] == 2:
                die()
            if fault == "slow":
                time.sleep(2)
            return super().embed_documents(texts, show_progress)

    upsert, delete = VectorStore.upsert, VectorStore.delete

    def faulty_upsert(self, ids, embeddings, metadata):
        upsert(self, ids, embeddings, metadata)
        calls["upsert"] += 1
        if fault == "after_upsert" and calls["upsert"] == 2:
            die()

    def faulty_delete(self, ids):
        if fault == "before_delete" and ids:
            die()
        delete(self, ids)

    VectorStore.upsert, VectorStore.delete = faulty_upsert, faulty_delete
    kb = make_knowledge(Path(os.environ["HOME_DIR"]), {"docs": Path(os.environ["DOCS"])}, FaultyEmbedder(batch_size=4))
    print(kb.refresh().summary(), flush=True)
    """
)


def write_docs(folder: Path, version: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for n in range(FILES):
        path = folder / f"team-{n:03d}.md"
        path.write_text(f"# Team {n}\n\nTeam {n} uses the code word {version}{n:03d} for its weekly sync.\n")
        os.utime(path, (time.time(), time.time() + (1 if version == "beta" else 0)))


def start_child(home: Path, docs: Path, fault: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PROJECT": str(PROJECT), "HOME_DIR": str(home), "DOCS": str(docs), "FAULT": fault}
    return subprocess.Popen(
        [sys.executable, "-c", CHILD], env=env, cwd=PROJECT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


@pytest.fixture(scope="module")
def embedder() -> CountingEmbedder:
    return CountingEmbedder()


def versions(kb: KnowledgeBase) -> dict[int, set[str]]:
    """Which code words (alpha = old, beta = new) the index answers with, per team."""
    found: dict[int, set[str]] = {n: set() for n in range(FILES)}
    for word in ("alpha", "beta"):
        for n in range(FILES):
            hits = kb.retriever.search(f"{word}{n:03d}", k=3, mode="keyword")
            if any(f"{word}{n:03d}" in p.text for p in hits):
                found[n].add(word)
    return found


@pytest.mark.parametrize("fault", ["embedding", "after_upsert", "before_delete"])
def test_killed_refresh_leaves_old_answers_and_next_run_completes(
    tmp_path: Path, embedder: CountingEmbedder, fault: str
) -> None:
    docs, home = tmp_path / "docs", tmp_path / "home"
    write_docs(docs, "alpha")
    kb = make_knowledge(home, {"docs": docs}, embedder)
    assert kb.refresh().added == FILES
    kb.close()
    write_docs(docs, "beta")

    child = start_child(home, docs, fault)
    _, stderr = child.communicate(timeout=300)
    assert child.returncode == -signal.SIGKILL, stderr

    kb = make_knowledge(home, {"docs": docs}, embedder)
    # Every file answers with exactly one version: fully old or fully new.
    state = versions(kb)
    assert all(len(words) == 1 for words in state.values()), state
    new = sum(1 for words in state.values() if words == {"beta"})
    if fault == "embedding":
        assert 0 < new < FILES  # the first batch was committed, the rest was not
    # Dense search returns only live chunks, each of them a version its file holds now.
    for n in (0, FILES - 1):
        for passage in kb.retriever.search(f"which code word does team {n} use", k=5, mode="dense"):
            team = int(passage.path[5:8])
            assert any(f"{word}{team:03d}" in passage.text for word in state[team])

    report = kb.refresh()
    assert (report.updated, report.unchanged, report.failed) == (FILES - new, new, [])
    assert all(words == {"beta"} for words in versions(kb).values())
    documents, chunks = kb.catalog.counts()
    assert documents == FILES and kb.vectors.count() == chunks and not kb.catalog.journal()
    kb.close()


def test_second_refresh_is_refused_while_one_runs_in_another_process(
    tmp_path: Path, embedder: CountingEmbedder
) -> None:
    docs, home = tmp_path / "docs", tmp_path / "home"
    write_docs(docs, "alpha")
    kb = make_knowledge(home, {"docs": docs}, embedder)
    child = start_child(home, docs, "slow")
    try:
        deadline = time.monotonic() + 120
        while (home / "index/refresh.lock").exists() is False or (home / "index/refresh.lock").read_text() != str(
            child.pid
        ):
            assert child.poll() is None and time.monotonic() < deadline, child.stderr.read() if child.stderr else ""
            time.sleep(0.1)
        with pytest.raises(IndexBusyError, match=f"another refresh is running \\(pid {child.pid}\\)"):
            kb.refresh()
        stdout, stderr = child.communicate(timeout=300)
        assert child.returncode == 0, stderr
        assert f"added={FILES}" in stdout
    finally:
        if child.poll() is None:
            child.kill()
    report = kb.refresh()  # the lock is free again
    assert report.unchanged == FILES
    kb.close()


def test_lock_is_exclusive_within_a_process_and_freed_on_release(tmp_path: Path) -> None:
    path = tmp_path / "refresh.lock"
    with RefreshLock(path), pytest.raises(IndexBusyError, match=f"pid {os.getpid()}"):
        RefreshLock(path).acquire()
    with RefreshLock(path):
        pass
