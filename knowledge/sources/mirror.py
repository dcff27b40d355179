"""A cloud source's copy of its listing: what the drive held at the last poll, kept in SQLite
(`<home>/index/sources/<source>.sqlite3`) so that a poll asks the drive only what changed
(Graph delta, Drive changes) and the sync still sees every file.

Items (files, folders, each drive's root) are stored by id with their parent, so a rename or
move of a folder is one row and paths are derived when listing. Each item keeps the
permissions granted on it and whether it inherits its parent's; a file's principals are its
own plus, while the chain inherits, its ancestors'. A drive's change cursor is written in
the same transaction as the changes it covers: a poll killed half way is redone from the
previous cursor, and upserts by id make a change seen twice harmless.

Names come from whoever writes to the drive: a name with "/" or a "." / ".." name cannot
reach outside its folder, and two items at the same path (Drive allows it) get distinct
paths.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from knowledge.sources.base import SyncState
from knowledge.types import SourceFile

_SCHEMA = """
CREATE TABLE IF NOT EXISTS items (
    item_id TEXT PRIMARY KEY,
    drive_id TEXT NOT NULL,
    parent_id TEXT,
    name TEXT NOT NULL,
    is_folder INTEGER NOT NULL,
    size INTEGER NOT NULL,
    modified REAL NOT NULL,
    url TEXT NOT NULL,
    version TEXT NOT NULL,
    own_principals TEXT,
    inherits INTEGER NOT NULL,
    extra TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS items_by_parent ON items (parent_id);
CREATE INDEX IF NOT EXISTS items_by_drive ON items (drive_id);
CREATE TABLE IF NOT EXISTS cursors (drive_id TEXT PRIMARY KEY, cursor TEXT NOT NULL, saved_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


@dataclass(frozen=True)
class MirrorItem:
    """One file, folder or drive root as the drive last described it."""

    item_id: str
    drive_id: str
    parent_id: str | None  # None for a drive's root, whose name starts every path in it
    name: str
    is_folder: bool
    size: int = 0
    modified: float = 0.0  # epoch seconds of the last content change
    url: str = ""  # where a person opens it (webUrl, webViewLink)
    version: str = ""  # changes when the content does (cTag, md5Checksum, version)
    # Principals granted on this item itself; None when they could not be read (then the
    # item is readable by nobody, whatever its ancestors grant).
    own_principals: frozenset[str] | None = frozenset()
    inherits: bool = True  # whether its parent's principals apply to it too
    extra: str = ""  # what the source needs to read it (a mime type, an export format), as it likes


@dataclass(frozen=True)
class MirroredFile:
    """A file with its path in the source and the principals that may read it."""

    item: MirrorItem
    path: str  # "<drive root name>/<folders>/<name>", POSIX
    principals: frozenset[str] | None

    def source_file(self, source: str, root: str) -> SourceFile:
        """The file as source `source` (root `root`) lists it to the sync."""
        return SourceFile(
            source=source,
            root=root,
            relative_path=self.path,
            url=self.item.url,
            size=self.item.size,
            mtime=self.item.modified,
            principals=self.principals,
        )


@dataclass(frozen=True)
class Listing:
    """Every file of the mirror, and the ids of items cut off from a drive root (a parent
    not known yet, or a loop in the parents a broken feed sent): those are not listed."""

    files: list[MirroredFile]
    detached: list[str]


class ListingMirror:
    """The SQLite copy of one cloud source's listing. Not thread-safe: one refresh at a time
    holds it (the refresh lock)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.executescript(_SCHEMA)

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # -- cursors and sync times ------------------------------------------------------------

    def cursor(self, drive_id: str) -> str | None:
        """The drive's change cursor (deltaLink, page token); None before its first
        complete enumeration."""
        row = self.db.execute("SELECT cursor FROM cursors WHERE drive_id = ?", (drive_id,)).fetchone()
        return None if row is None else str(row[0])

    def mark_synced(self, when: datetime) -> None:
        """Record a poll of every drive that completed at `when`."""
        self.db.execute("INSERT OR REPLACE INTO meta VALUES ('last_sync_at', ?)", (when.isoformat(),))

    def sync_state(self) -> SyncState:
        last = self.db.execute("SELECT value FROM meta WHERE key = 'last_sync_at'").fetchone()
        oldest = self.db.execute("SELECT MIN(saved_at) FROM cursors").fetchone()[0]
        return SyncState(
            last_sync_at=datetime.fromisoformat(last[0]) if last else None,
            cursor_saved_at=datetime.fromisoformat(oldest) if oldest else None,
        )

    def meta(self, key: str) -> str | None:
        """A value the source keeps beside its listing (e.g. which drives its sites hold)."""
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    # -- changes ---------------------------------------------------------------------------

    def apply(
        self,
        drive_id: str,
        upserts: Iterable[MirrorItem] = (),
        removals: Iterable[str] = (),
        cursor: str | None = None,
        now: datetime | None = None,
    ) -> None:
        """One page of changes, in one transaction: items added or changed (the last
        version wins when an item comes twice), items removed with everything below them,
        and the drive's new cursor when this page ends a poll (None keeps the old one, so a
        poll killed between pages starts again from it)."""
        with self._transaction() as db:
            for item in upserts:
                db.execute("INSERT OR REPLACE INTO items VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", _row(item))
            for item_id in removals:
                _remove_subtree(db, item_id)
            if cursor is not None:
                _save_cursor(db, drive_id, cursor, now)

    def replace_drive(
        self, drive_id: str, items: Iterable[MirrorItem], cursor: str, now: datetime | None = None
    ) -> None:
        """A complete enumeration of the drive (the first, or after the cursor expired):
        its items replace all the drive had, with the cursor taken before it began."""
        with self._transaction() as db:
            db.execute("DELETE FROM items WHERE drive_id = ?", (drive_id,))
            for item in items:
                db.execute("INSERT OR REPLACE INTO items VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", _row(item))
            _save_cursor(db, drive_id, cursor, now)

    def keep_drives(self, drive_ids: Iterable[str]) -> None:
        """Forget drives no longer configured (their files then leave the index)."""
        keep = sorted(set(drive_ids))
        marks = ",".join("?" * len(keep))
        with self._transaction() as db:
            db.execute(f"DELETE FROM items WHERE drive_id NOT IN ({marks})", keep)
            db.execute(f"DELETE FROM cursors WHERE drive_id NOT IN ({marks})", keep)

    # -- reading ---------------------------------------------------------------------------

    def item(self, item_id: str) -> MirrorItem | None:
        row = self.db.execute("SELECT * FROM items WHERE item_id = ?", (item_id,)).fetchone()
        return None if row is None else _item(row)

    def listing(self) -> Listing:
        """Every file with its path and principals, in path order."""
        items = {item.item_id: item for item in map(_item, self.db.execute("SELECT * FROM items"))}
        paths: dict[str, str | None] = {}
        readers: dict[str, frozenset[str] | None] = {}
        detached: list[str] = []
        files: list[MirroredFile] = []
        for item in items.values():
            if item.is_folder:
                continue
            path = _path(item.item_id, items, paths)
            if path is None:
                detached.append(item.item_id)
                continue
            files.append(MirroredFile(item, path, _principals(item.item_id, items, readers)))
        return Listing(_distinct_paths(files), sorted(detached))

    def file_at(self, path: str) -> MirroredFile | None:
        return next((file for file in self.listing().files if file.path == path), None)


def _row(item: MirrorItem) -> tuple[object, ...]:
    own = None if item.own_principals is None else json.dumps(sorted(item.own_principals))
    return (
        item.item_id,
        item.drive_id,
        item.parent_id,
        item.name,
        int(item.is_folder),
        item.size,
        item.modified,
        item.url,
        item.version,
        own,
        int(item.inherits),
        item.extra,
    )


def _item(row: tuple[Any, ...]) -> MirrorItem:  # a row of `items`, as SQLite returns it
    (item_id, drive_id, parent_id, name, is_folder, size, modified, url, version, own, inherits, extra) = row
    return MirrorItem(
        item_id=str(item_id),
        drive_id=str(drive_id),
        parent_id=None if parent_id is None else str(parent_id),
        name=str(name),
        is_folder=bool(is_folder),
        size=int(size),
        modified=float(modified),
        url=str(url),
        version=str(version),
        own_principals=None if own is None else frozenset(json.loads(str(own))),
        inherits=bool(inherits),
        extra=str(extra),
    )


def _remove_subtree(db: sqlite3.Connection, item_id: str) -> None:
    db.execute(
        "WITH RECURSIVE gone(id) AS (SELECT ? UNION SELECT items.item_id FROM items JOIN gone ON items.parent_id = gone.id) "
        "DELETE FROM items WHERE item_id IN gone",
        (item_id,),
    )


def _save_cursor(db: sqlite3.Connection, drive_id: str, cursor: str, now: datetime | None) -> None:
    saved_at = (now or datetime.now(UTC)).isoformat()
    db.execute("INSERT OR REPLACE INTO cursors VALUES (?, ?, ?)", (drive_id, cursor, saved_at))


def _safe_name(name: str) -> str:
    """A name that stays one path component: "/" cannot make folders, "." and ".." cannot
    climb, an empty name still shows."""
    cleaned = name.replace("/", "∕").replace("\\", "∖").strip()
    return "_" if cleaned in ("", ".", "..") else cleaned


def _path(item_id: str, items: dict[str, MirrorItem], paths: dict[str, str | None]) -> str | None:
    """The item's path from its drive root, or None when the chain is broken or loops."""
    chain: list[str] = []
    current: str | None = item_id
    while current is not None and current not in paths:
        if current in chain or current not in items:
            for seen in chain:
                paths[seen] = None
            return None
        chain.append(current)
        current = items[current].parent_id
    prefix = paths[current] if current is not None else ""
    for seen in reversed(chain):
        if prefix is None:
            paths[seen] = None
            continue
        name = _safe_name(items[seen].name)
        prefix = f"{prefix}/{name}" if prefix else name
        paths[seen] = prefix
    return paths[item_id]


def _principals(
    item_id: str, items: dict[str, MirrorItem], readers: dict[str, frozenset[str] | None]
) -> frozenset[str] | None:
    """Own principals plus, while the chain inherits, the parent's; None when the item's
    own could not be read. Called only for items whose chain is known to be whole."""
    if item_id in readers:
        return readers[item_id]
    item = items[item_id]
    if item.own_principals is None:
        result: frozenset[str] | None = None
    elif item.inherits and item.parent_id is not None:
        inherited = _principals(item.parent_id, items, readers)
        result = item.own_principals | (inherited or frozenset())
    else:
        result = item.own_principals
    readers[item_id] = result
    return result


def _distinct_paths(files: list[MirroredFile]) -> list[MirroredFile]:
    """Sorted by path; where several files share a path, all but the one with the smallest
    id get the start of their id before the extension ("Notes~1a2b3c4d.docx")."""
    by_path: dict[str, list[MirroredFile]] = {}
    for file in files:
        by_path.setdefault(file.path.casefold(), []).append(file)
    result: list[MirroredFile] = []
    for same in by_path.values():
        same.sort(key=lambda file: file.item.item_id)
        result.append(same[0])
        for file in same[1:]:
            pure = PurePosixPath(file.path)
            renamed = str(pure.with_name(f"{pure.stem}~{file.item.item_id[:8]}{pure.suffix}"))
            result.append(MirroredFile(file.item, renamed, file.principals))
    return sorted(result, key=lambda file: file.path)
