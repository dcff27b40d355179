"""The embedded Chroma store written by another process (`lore index`, `lore worker`): a
process that opened it earlier answers from the new vectors within a second or two, without
restarting, and its own later writes keep the other process's vectors."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from knowledge.config import IndexSettings
from knowledge.index import vectors as vectors_module
from knowledge.index.vectors import VectorMetadata, VectorStore
from knowledge.lock import RefreshLock, held_elsewhere
from tests.support.knowledge_index import CountingEmbedder, make_knowledge
from tests.support.refresh_child import PROJECT

# Another process: a refresh of HOME_DIR from DOCS; or WRITE random vectors (ids PREFIX0,
# PREFIX1, ..., seeded by SEED) into the embedded store at STORE; or with FIND, print how many
# of those are their own nearest neighbour there; with LOCK, write holding that refresh lock
# until a line arrives on stdin.
CHILD = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path
    sys.path.insert(0, os.environ["PROJECT"])
    if os.environ.get("DOCS"):
        from knowledge.embeddings import Embedder
        from tests.support.knowledge_index import make_knowledge
        kb = make_knowledge(Path(os.environ["HOME_DIR"]), {"docs": Path(os.environ["DOCS"])}, Embedder())
        print(kb.refresh().summary(), flush=True)
    else:
        from tests.knowledge.test_vector_freshness import found, random_vectors, store, write
        vectors = store(Path(os.environ["STORE"]))
        prefix, n, seed = os.environ["PREFIX"], int(os.environ["WRITE"]), int(os.environ["SEED"])
        if os.environ.get("FIND"):
            print(found(vectors, *random_vectors(prefix, n, seed)))
        elif os.environ.get("LOCK"):  # a refresh: holds the lock until told to finish
            from knowledge.lock import RefreshLock
            with RefreshLock(Path(os.environ["LOCK"])):
                write(vectors, prefix, n, seed)
                print("written", flush=True)
                sys.stdin.readline()
        else:
            write(vectors, prefix, n, seed)
    """
)

DIMENSIONS = 8


def store(folder: Path) -> VectorStore:
    return VectorStore(IndexSettings(), folder)


def random_vectors(prefix: str, n: int, seed: int) -> tuple[list[str], np.ndarray]:
    vectors = np.random.default_rng(seed).normal(size=(n, DIMENSIONS)).astype(np.float32)
    return [f"{prefix}{i}" for i in range(n)], vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def write(vectors: VectorStore, prefix: str, n: int, seed: int) -> tuple[list[str], np.ndarray]:
    ids, embeddings = random_vectors(prefix, n, seed)
    vectors.upsert(ids, embeddings, [VectorMetadata("s", "p", "a")] * n)
    return ids, embeddings


def run_child(timeout: float = 120, **env: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", CHILD],
        env={**os.environ, "PROJECT": str(PROJECT), **env},
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def found(vectors: VectorStore, ids: list[str], embeddings: np.ndarray) -> int:
    """How many of `ids` are their own nearest neighbour."""
    return sum(
        vectors.query(vector, 1, None)[0][0] == vector_id for vector_id, vector in zip(ids, embeddings, strict=True)
    )


def until(condition: Callable[[], bool], seconds: float) -> float:
    """Seconds until `condition()` held (fails after `seconds`)."""
    start = time.monotonic()
    while not condition():
        assert time.monotonic() - start < seconds, f"not within {seconds} s"
        time.sleep(0.1)
    return time.monotonic() - start


def test_search_sees_what_another_process_indexed_without_restarting(tmp_path: Path) -> None:
    docs, home = tmp_path / "docs", tmp_path / "home"
    docs.mkdir()
    (docs / "boats.md").write_text("# Boats\n\nThe rowing club keeps its kayaks in the north boathouse.\n")
    (docs / "pelicans.md").write_text("# Pelicans\n\nThe zoo feeds the pelicans sardines every morning.\n")
    kb = make_knowledge(home, {"docs": docs}, CountingEmbedder())
    assert kb.refresh().added == 2
    pelican_question = "what do the pelicans eat in the morning"
    assert kb.retriever.search(pelican_question, k=1, mode="dense")[0].path == "pelicans.md"

    (docs / "pelicans.md").unlink()
    (docs / "invoices.md").write_text("# Invoices\n\nSuppliers send invoices to accounts payable by email.\n")
    assert "added=1" in run_child(HOME_DIR=str(home), DOCS=str(docs))

    invoice_question = "where do suppliers send their invoices"

    def answered() -> bool:
        return all(
            [p.path for p in kb.retriever.search(invoice_question, k=1, mode=mode)] == ["invoices.md"]
            for mode in ("dense", "hybrid")
        )

    assert until(answered, 3) < 3
    assert all(p.path != "pelicans.md" for p in kb.retriever.search(pelican_question, k=5, mode="dense"))
    kb.close()


def test_own_writes_after_another_process_wrote_keep_its_vectors(tmp_path: Path) -> None:
    # Enough vectors that Chroma writes its index files (it keeps small writes in its log).
    folder = tmp_path / "chroma"
    vectors = store(folder)
    write(vectors, "mine-", 500, seed=1)
    run_child(STORE=str(folder), PREFIX="theirs-", WRITE="600", SEED="2")
    write(vectors, "later-", 1000, seed=3)
    # A third process finds every vector the second one wrote.
    assert run_child(STORE=str(folder), PREFIX="theirs-", WRITE="600", SEED="2", FIND="1").strip() == "600"


def test_queries_racing_with_reopens_never_fail(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(vectors_module, "FRESHNESS_INTERVAL", 0.2)
    folder = tmp_path / "chroma"
    vectors = store(folder)
    write(vectors, "mine-", 200, seed=1)
    errors: list[BaseException] = []
    stop = threading.Event()

    def search(seed: int) -> None:
        queries = np.random.default_rng(seed).normal(size=(100_000, DIMENSIONS)).astype(np.float32)
        for query in queries:
            if stop.is_set():
                return
            try:
                assert len(vectors.query(query, 5, None)) == 5
                assert vectors.embeddings(["mine-0"]).keys() == {"mine-0"}
            except BaseException as error:  # noqa: BLE001  (reported by the test)
                errors.append(error)
                return

    caplog.set_level(logging.INFO, logger="knowledge.index.vectors")
    threads = [threading.Thread(target=search, args=(seed,)) for seed in range(4)]
    for thread in threads:
        thread.start()
    try:
        for prefix, seed in (("theirs-", 2), ("again-", 7)):
            run_child(STORE=str(folder), PREFIX=prefix, WRITE="5", SEED=str(seed))
            theirs, embeddings = random_vectors(prefix, 5, seed)
            until(lambda: found(vectors, theirs, embeddings) == 5, 3)  # noqa: B023  (called at once)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert errors == []
    assert sum("Re-opened" in record.message for record in caplog.records) >= 2


def test_reopening_one_store_leaves_the_others_in_this_process_working(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(vectors_module, "FRESHNESS_INTERVAL", 0.2)
    reader, same_folder = store(tmp_path / "a"), store(tmp_path / "a")
    other = store(tmp_path / "b")
    mine, mine_vectors = write(reader, "a-", 20, seed=1)
    others, others_vectors = write(other, "b-", 20, seed=2)
    time.sleep(0.3)
    assert found(same_folder, mine, mine_vectors) == 20  # another store on the folder: re-opened

    run_child(STORE=str(tmp_path / "a"), PREFIX="theirs-", WRITE="5", SEED="3")
    theirs, theirs_vectors = random_vectors("theirs-", 5, 3)
    time.sleep(0.3)
    caplog.set_level(logging.INFO, logger="knowledge.index.vectors")
    caplog.clear()
    assert found(reader, theirs, theirs_vectors) == 5
    assert found(other, others, others_vectors) == 20
    assert found(same_folder, theirs, theirs_vectors) == 5
    # Each re-open commits to Chroma's database: that is no news to the other readers.
    time.sleep(0.3)
    assert found(reader, mine, mine_vectors) == 20
    assert found(same_folder, mine, mine_vectors) == 20
    assert found(other, others, others_vectors) == 20
    assert [record.getMessage() for record in caplog.records] == [
        f"Re-opened Chroma at {tmp_path / 'a'}: another process changed it"
    ] * 2


def test_changes_are_picked_up_once_the_other_process_refresh_is_over(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Loading the index from disk while another process writes it can lose that process's
    # vectors on disk: a reader waits for the refresh lock to be free.
    monkeypatch.setattr(vectors_module, "FRESHNESS_INTERVAL", 0.2)
    folder, lock = tmp_path / "chroma", tmp_path / "refresh.lock"
    vectors = VectorStore(IndexSettings(), folder, lambda: held_elsewhere(lock))
    mine, mine_vectors = write(vectors, "mine-", 20, seed=1)
    assert found(vectors, mine, mine_vectors) == 20  # the index is loaded into memory
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD],
        env={**os.environ, "PROJECT": str(PROJECT), "STORE": str(folder), "PREFIX": "theirs-", "WRITE": "5"}
        | {"SEED": "2", "LOCK": str(lock)},
        cwd=PROJECT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None and child.stdout.readline() == "written\n"
        theirs, theirs_vectors = random_vectors("theirs-", 5, 2)
        time.sleep(0.5)
        assert found(vectors, theirs, theirs_vectors) == 0  # still refreshing: the old index answers
        assert found(vectors, mine, mine_vectors) == 20
        child.communicate("done\n", timeout=30)
        assert child.returncode == 0
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()
    until(lambda: found(vectors, theirs, theirs_vectors) == 5, 2)


def test_a_refresh_lock_is_held_elsewhere_only_by_another_live_process(tmp_path: Path) -> None:
    lock = tmp_path / "refresh.lock"
    assert not held_elsewhere(lock)  # no file
    with RefreshLock(lock):
        assert not held_elsewhere(lock)  # this process
    assert not held_elsewhere(lock)  # released
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    lock.write_text(dead.stdout.strip())
    assert not held_elsewhere(lock)  # killed without releasing
    lock.write_text(str(os.getppid()))
    assert held_elsewhere(lock)
