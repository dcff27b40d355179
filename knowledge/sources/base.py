"""The interface every document source implements: a folder (a mounted share), SharePoint /
OneDrive, Google Drive."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from knowledge.types import SourceFile


@dataclass(frozen=True)
class SourceProblem:
    """A folder or file the last listing could not read; the listing went on without it."""

    path: str  # relative to the root, POSIX
    reason: str
    # The source refused Lore's account (EACCES/EPERM, HTTP 403): the files Lore had indexed
    # under this path are withdrawn, not kept like those under a folder that failed otherwise.
    denied: bool = False


@dataclass(frozen=True)
class SyncState:
    """Where an incremental source stands (`lore sources list`): when it last brought its
    listing up to date, and how old its oldest change cursor is (a cloud drive forgets an
    unused cursor after a while, which costs a full enumeration)."""

    last_sync_at: datetime | None
    cursor_saved_at: datetime | None


class Source(Protocol):
    """Somewhere documents live. Listing is cheap (metadata only); reading is separate so a
    sync can skip reading files whose size and modification time did not change.

    A source that learns of changes incrementally (a cloud drive's delta or changes feed)
    still lists every file: it keeps its own copy of the listing, brings it up to date
    (committing the new cursor with it) and lists from that. The sync compares the listing
    with the index, so a refresh killed at any point is redone from the index's side."""

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

    def file(self, relative_path: str) -> SourceFile:
        """One file's metadata as the listing records it (`lore acl explain`); SourceError
        when the source has no such file."""
        ...

    def sync_state(self) -> SyncState | None:
        """Where incremental listing stands; None for a source listed in full each time."""
        ...

    def check(self, limit: int) -> list[SourceFile]:
        """`lore sources test`: authenticate and list up to `limit` files, changing nothing
        (no cursor saved, nothing written). Raises SourceError / AccessDeniedError with what
        to fix."""
        ...

    def close(self) -> None:
        """Release connections and files."""
        ...
