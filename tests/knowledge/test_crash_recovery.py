"""A refresh killed (SIGKILL) half way leaves the previous index answering correctly and the
next refresh finishes the work; two refreshes never run at once, across processes."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from knowledge.errors import IndexBusyError
from knowledge.lock import RefreshLock
from tests.support.knowledge_index import CountingEmbedder, make_knowledge
from tests.support.refresh_child import FILES, start_child, versions, write_docs


@pytest.fixture(scope="module")
def embedder() -> CountingEmbedder:
    return CountingEmbedder()


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
