"""The interface every document source implements (a filesystem share today; others later)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from knowledge.types import SourceFile


class Source(Protocol):
    """Somewhere documents live. Listing is cheap (metadata only); reading is separate so a
    sync can skip reading files whose size and modification time did not change."""

    name: str

    def list_files(self) -> Iterator[SourceFile]:
        """Yield every candidate document, metadata only. Raises SourceError when the
        source as a whole cannot be read (so a sync never mistakes an unmounted share for
        a share whose files were all deleted)."""
        ...

    def read_bytes(self, file: SourceFile) -> bytes:
        """The file's content. Raises SourceError when it vanished or cannot be read."""
        ...
