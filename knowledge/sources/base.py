"""The interface every document source implements (a filesystem share today; others later)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from knowledge.types import SourceFile


@dataclass(frozen=True)
class SourceProblem:
    """A folder or file the last listing could not read; the listing went on without it."""

    path: str  # relative to the root, POSIX
    reason: str
    # The file system refused Lore's account (EACCES/EPERM): the files Lore had indexed
    # under this path are withdrawn, not kept like those under a folder that failed otherwise.
    denied: bool = False


class Source(Protocol):
    """Somewhere documents live. Listing is cheap (metadata only); reading is separate so a
    sync can skip reading files whose size and modification time did not change."""

    name: str
    # What the last `list_files` could not read: the sync reports each; it withdraws the
    # files it had indexed under a `denied` one and keeps those under the others.
    problems: list[SourceProblem]
    # Larger files are reported, not read (checked against the listed size, and again while
    # reading in case the file grew since).
    max_file_bytes: int

    def list_files(self) -> Iterator[SourceFile]:
        """Yield every candidate document, metadata only. Raises SourceError when the
        source as a whole cannot be read (so a sync never mistakes an unmounted share for
        a share whose files were all deleted); AccessDeniedError when Lore's account was
        refused (its documents are then withdrawn)."""
        ...

    def read_bytes(self, file: SourceFile) -> bytes:
        """The file's content. Raises SourceError when it vanished or cannot be read,
        AccessDeniedError when Lore's account was refused, and FileTooLargeError when it has
        grown past `max_file_bytes` since it was listed."""
        ...
