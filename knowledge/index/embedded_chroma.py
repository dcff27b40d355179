"""The embedded Chroma store (`PersistentClient`) shared by several processes: a client of
its own per VectorStore, and a stamp that says when another process wrote to the store.

A Chroma process answers queries from the vector index it loaded into memory; it does not see
what another process (`lore index`, `lore worker`) wrote afterwards until it re-opens the
store, and a write through a stale in-memory index overwrites the other process's vectors on
disk. chromadb also keeps one store ("system") per path for the whole process, so a new
client alone is not a re-open: each VectorStore takes a system of its own out of that cache,
which it can close and re-create without touching any other store in the process."""

from __future__ import annotations

import os
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # chromadb is imported when a store is opened, not with this module
    from chromadb.api import ClientAPI

# Chroma's own database in the store's folder: every write (and every client start) commits
# to it.
DATABASE = "chroma.sqlite3"

# The newest entry of Chroma's write log and the collections' ids: they change when vectors
# are written or a collection is re-created, and not when a process merely opens the store
# (which commits a row of its own to the database: the file's mtime alone would make two
# reading processes re-open each other's store forever).
_DATA_VERSION = (
    "SELECT (SELECT max(seq_id) FROM embeddings_queue),"
    " (SELECT group_concat(id) FROM (SELECT id FROM collections ORDER BY id))"
)

_cache_lock = threading.Lock()


def open_private_client(folder: Path, settings: Any) -> ClientAPI:
    """A PersistentClient on `folder` whose system no other client shares (any system of
    the path already cached for other clients stays theirs)."""
    import chromadb
    from chromadb.api.shared_system_client import SharedSystemClient

    key = str(folder)
    systems, refcounts = SharedSystemClient._identifier_to_system, SharedSystemClient._identifier_to_refcount
    with _cache_lock:
        shared = systems.pop(key, None), refcounts.pop(key, None)
        try:
            return chromadb.PersistentClient(path=key, settings=settings)
        finally:
            systems.pop(key, None)
            refcounts.pop(key, None)
            if shared[0] is not None:
                systems[key] = shared[0]
            if shared[1] is not None:
                refcounts[key] = shared[1]


def close_private_client(client: ClientAPI) -> None:
    """Stop a client from `open_private_client`: its system's files and memory are freed."""
    client._server._system.stop()  # type: ignore[attr-defined]


@dataclass(frozen=True)
class StoreStamp:
    """What the store's files looked like: `file` (mtime, size, inode of the database) is a
    `stat`; `data` is read from the database only when `file` changed."""

    file: tuple[int, int, int] | None
    data: tuple[Any, ...] | None


def file_stamp(folder: Path) -> tuple[int, int, int] | None:
    try:
        status = os.stat(folder / DATABASE)
    except FileNotFoundError:
        return None
    return status.st_mtime_ns, status.st_size, status.st_ino


def data_stamp(folder: Path) -> tuple[Any, ...] | None:
    """The data version (None when it cannot be read: the caller then re-opens to be safe)."""
    uri = (folder / DATABASE).absolute().as_uri() + "?mode=ro"
    try:
        connection = sqlite3.connect(uri, uri=True, timeout=5)
        try:
            row = connection.execute(_DATA_VERSION).fetchone()
        finally:
            connection.close()
    except sqlite3.Error:
        return None
    return tuple(row) if row is not None else None


def read_stamp(folder: Path) -> StoreStamp:
    return StoreStamp(file_stamp(folder), data_stamp(folder))


def changed_since(folder: Path, seen: StoreStamp) -> tuple[bool, StoreStamp]:
    """Whether another writer changed the store since `seen`, and the stamp to remember."""
    file = file_stamp(folder)
    if file == seen.file:
        return False, seen
    data = data_stamp(folder)
    return (data is None or data != seen.data), StoreStamp(file, data)
