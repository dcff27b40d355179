"""A refresh run in a child process (another machine, as far as the index can tell), killed
with SIGKILL at a chosen point or slowed down, over FILES small documents whose code words
say which version of each file the index answers with."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from knowledge.knowledge_base import KnowledgeBase

PROJECT = Path(__file__).resolve().parents[2]
FILES = 100

# Runs one refresh in a child process over HOME_DIR and DOCS. FAULT says where the child kills
# itself with SIGKILL (no cleanup of any kind runs):
#   embedding      - inside the second embedding batch (the first batch is committed)
#   after_upsert   - right after the second batch's vectors reach Chroma, before the catalog
#   before_delete  - after a catalog switch, before the freed vectors are deleted
#   slow           - no kill: every embedding batch takes 2 s longer (for the lock tests)
# Its embedder batch size of 4 makes refreshes commit every 64 chunks: several batches here.
# CATALOG_URL (a PostgreSQL catalog) and CHROMA_PORT + COLLECTION (a Chroma server on
# loopback) are optional.
CHILD = textwrap.dedent(
    """
    import os, signal, sys, time
    from pathlib import Path
    sys.path.insert(0, os.environ["PROJECT"])
    from knowledge.config import IndexSettings
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
    port = os.environ.get("CHROMA_PORT")
    index = None
    if port:
        index = IndexSettings(chroma_host="127.0.0.1", chroma_port=int(port), collection=os.environ["COLLECTION"])
    kb = make_knowledge(
        Path(os.environ["HOME_DIR"]),
        {"docs": Path(os.environ["DOCS"])},
        FaultyEmbedder(batch_size=4),
        index=index,
        catalog_url=os.environ.get("CATALOG_URL") or None,
    )
    print(kb.refresh().summary(), flush=True)
    """
)


def write_docs(folder: Path, version: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for n in range(FILES):
        path = folder / f"team-{n:03d}.md"
        path.write_text(f"# Team {n}\n\nTeam {n} uses the code word {version}{n:03d} for its weekly sync.\n")
        os.utime(path, (time.time(), time.time() + (1 if version == "beta" else 0)))


def start_child(home: Path, docs: Path, fault: str, **env: str) -> subprocess.Popen[str]:
    """The child refresh; `env`: CATALOG_URL, CHROMA_PORT, COLLECTION."""
    environment = {**os.environ, "PROJECT": str(PROJECT), "HOME_DIR": str(home), "DOCS": str(docs), "FAULT": fault}
    return subprocess.Popen(
        [sys.executable, "-c", CHILD],
        env={**environment, **env},
        cwd=PROJECT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def versions(kb: KnowledgeBase) -> dict[int, set[str]]:
    """Which code words (alpha = old, beta = new) the index answers with, per team."""
    found: dict[int, set[str]] = {n: set() for n in range(FILES)}
    for word in ("alpha", "beta"):
        for n in range(FILES):
            hits = kb.retriever.search(f"{word}{n:03d}", k=3, mode="keyword")
            if any(f"{word}{n:03d}" in p.text for p in hits):
                found[n].add(word)
    return found
