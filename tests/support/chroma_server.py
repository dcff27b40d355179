"""A real Chroma server for the tests that need one (vectors shared by several processes).

`chroma_server` (session fixture) is the server at `LORE_TEST_CHROMA_URL` when set (`.ci/run`
starts one with `.ci/start-chroma.sh` and exports it); otherwise it starts a throwaway
`chroma run --path <temp> --port <free>` itself, waits for its heartbeat and stops it at the
end. When neither works the tests that need it are skipped with the reason.

Tests share the server, never a collection: `ChromaServer.index_settings()` names a new one
each time, so no test sees another's vectors (nor an earlier run's, on a long-lived server).
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import pytest

from knowledge.config import IndexSettings
from tests.support.knowledge_index import chroma_server as run_chroma

ENV = "LORE_TEST_CHROMA_URL"


@dataclass(frozen=True)
class ChromaServer:
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def index_settings(self, collection: str | None = None) -> IndexSettings:
        """Index settings on this server, in `collection` (default: a new one of its own)."""
        return IndexSettings(
            chroma_host=self.host, chroma_port=self.port, collection=collection or f"test-{uuid.uuid4().hex[:16]}"
        )


@pytest.fixture(scope="session")
def chroma_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChromaServer]:
    """A running Chroma server on loopback (or wherever LORE_TEST_CHROMA_URL says)."""
    url = os.environ.get(ENV)
    if url:
        parts = urlsplit(url)
        if not parts.hostname or not parts.port:
            raise pytest.UsageError(f"{ENV}={url!r} must look like http://127.0.0.1:8000")
        yield ChromaServer(parts.hostname, parts.port)
        return
    with contextlib.ExitStack() as running:
        try:
            port = running.enter_context(run_chroma(tmp_path_factory.mktemp("chroma") / "data"))
        except RuntimeError as reason:
            pytest.skip(f"no Chroma server: {reason} (set {ENV} to use a running one)")
        yield ChromaServer("127.0.0.1", port)
