"""Helpers for the knowledge index tests: an embedder that counts what it embeds, a source
that counts what it reads, a KnowledgeBase factory and a real Chroma server on loopback."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from knowledge.config import FolderSourceSettings, IndexSettings, RetrievalSettings
from knowledge.embeddings import Embedder
from knowledge.knowledge_base import KnowledgeBase
from knowledge.sources.filesystem import FilesystemSource
from knowledge.sync import PermissionResolver
from knowledge.types import EVERYONE, SourceFile


class CountingEmbedder(Embedder):
    """The real MiniLM embedder, counting the document texts it is asked to embed."""

    def __init__(self, batch_size: int = 32) -> None:
        super().__init__(batch_size=batch_size)
        self.embedded: list[str] = []

    def embed_documents(self, texts: Sequence[str], show_progress: bool = False) -> np.ndarray:
        self.embedded.extend(texts)
        return super().embed_documents(texts, show_progress)

    def embed_query(self, text: str) -> np.ndarray:
        # Queries are not indexing work: do not count them.
        return super().embed_documents([text])[0]

    def take(self) -> list[str]:
        """The texts embedded since the last call."""
        texts, self.embedded = self.embedded, []
        return texts


class CountingSource(FilesystemSource):
    """A filesystem source that records which files were read."""

    def __init__(self, settings: FolderSourceSettings) -> None:
        super().__init__(settings)
        self.reads: list[str] = []

    def read_bytes(self, file: SourceFile) -> bytes:
        self.reads.append(file.relative_path)
        return super().read_bytes(file)


def make_knowledge(
    home: Path,
    folders: dict[str, Path],
    embedder: Embedder,
    permissions: PermissionResolver | None = None,
    index: IndexSettings | None = None,
    retrieval: RetrievalSettings | None = None,
    catalog_url: str | None = None,
) -> KnowledgeBase:
    """A KnowledgeBase over `folders` (source name -> folder) with the given embedder;
    without `permissions` every document is readable by everyone; `catalog_url`: a PostgreSQL
    catalog (None: SQLite under `home`)."""
    return KnowledgeBase(
        home,
        [FolderSourceSettings(name=name, path=path) for name, path in folders.items()],
        index or IndexSettings(),
        retrieval or RetrievalSettings(),
        embedder=embedder,
        permissions=permissions or (lambda file: frozenset({EVERYONE})),
        catalog_url=catalog_url,
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def chroma_server(folder: Path, timeout: float = 60.0) -> Iterator[int]:
    """Run `chroma run` on a free loopback port until the block ends; yields the port."""
    executable = shutil.which("chroma")
    if executable is None:
        raise RuntimeError("the `chroma` command (installed with chromadb) is not on PATH")
    port = free_port()
    log = (folder.parent / f"chroma-{port}.log").open("wb")
    process = subprocess.Popen(
        [executable, "run", "--path", str(folder), "--host", "127.0.0.1", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_for_heartbeat(port, process, timeout)
        yield port
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def _wait_for_heartbeat(port: int, process: subprocess.Popen[bytes], timeout: float) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"chroma run exited with code {process.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"chroma run did not answer on port {port} within {timeout}s")
