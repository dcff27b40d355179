"""The catalog: a SQLite database that is the index's source of truth.

It records every indexed file (size, mtime, hash, permissions), every live chunk with its
text, and an FTS5 table over the chunks that serves as the keyword index. The vector store
holds embeddings keyed by chunk id; a vector whose id is not a live chunk here is never
returned. A file's rows change in one transaction, so a refresh killed half way leaves
each file either fully old or fully new.

The journal table makes vector-store writes recoverable: vector ids are recorded as
`pending` before they are written and as `garbage` when the catalog stops referencing
them; the next refresh deletes whatever the journal says is not live.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from knowledge.types import EVERYONE

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files (
    source TEXT NOT NULL,
    path TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime REAL NOT NULL,
    sha256 TEXT NOT NULL,
    title TEXT NOT NULL,
    url TEXT NOT NULL,
    owner TEXT,
    mode INTEGER NOT NULL,
    acl TEXT NOT NULL,
    chunk_count INTEGER NOT NULL,
    indexed_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (source, path)
);
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY,
    chunk_id TEXT NOT NULL UNIQUE,
    source TEXT NOT NULL,
    path TEXT NOT NULL,
    ordinal INTEGER NOT NULL,
    title TEXT NOT NULL,
    heading TEXT NOT NULL,
    text TEXT NOT NULL,
    text_hash TEXT NOT NULL,
    acl TEXT NOT NULL,
    FOREIGN KEY (source, path) REFERENCES files (source, path)
);
CREATE INDEX IF NOT EXISTS chunks_by_file ON chunks (source, path);
CREATE INDEX IF NOT EXISTS chunks_by_text ON chunks (text_hash);
CREATE INDEX IF NOT EXISTS chunks_by_acl ON chunks (acl);
CREATE TABLE IF NOT EXISTS acls (acl TEXT PRIMARY KEY, principals TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS journal (vector_id TEXT PRIMARY KEY, state TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS failures (
    source TEXT NOT NULL,
    path TEXT NOT NULL,
    reason TEXT NOT NULL,
    refreshes INTEGER NOT NULL,
    PRIMARY KEY (source, path)
);
CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5(
    title, heading, text, content='chunks', content_rowid='id', tokenize='porter unicode61'
);
CREATE TRIGGER IF NOT EXISTS chunks_fts_insert AFTER INSERT ON chunks BEGIN
    INSERT INTO chunks_fts (rowid, title, heading, text) VALUES (new.id, new.title, new.heading, new.text);
END;
CREATE TRIGGER IF NOT EXISTS chunks_fts_delete AFTER DELETE ON chunks BEGIN
    INSERT INTO chunks_fts (chunks_fts, rowid, title, heading, text)
    VALUES ('delete', old.id, old.title, old.heading, old.text);
END;
"""


def acl_key(principals: Iterable[str]) -> str:
    """A short stable key for a set of principals; chunks with the same readers share it."""
    canonical = "\n".join(sorted(set(principals)))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class FileRecord:
    """What the catalog remembers about one indexed file."""

    source: str
    path: str
    size: int
    mtime: float
    sha256: str
    title: str
    url: str
    owner: str | None
    mode: int
    acl: str
    chunk_count: int
    indexed_at: str = ""


@dataclass(frozen=True)
class FailureRecord:
    """A file (or folder, or source) that failed at the last refresh, and for how many
    refreshes in a row. `path` is as the refresh reported it."""

    source: str
    path: str
    reason: str
    refreshes: int


@dataclass(frozen=True)
class ChunkRecord:
    """A live chunk: its vector id, where it sits, and its text."""

    chunk_id: str
    source: str
    path: str
    ordinal: int
    title: str
    heading: str
    text: str
    text_hash: str
    acl: str
    url: str = ""  # the file's link; filled when read back, not stored per chunk


@dataclass(frozen=True)
class ChunkFilter:
    """Catalog-level form of SearchFilters: which chunks a search may consider.

    `acls` None means no permission filtering; an empty tuple means nothing is readable."""

    sources: tuple[str, ...] = ()
    path_prefix: str = ""
    acls: tuple[str, ...] | None = None

    def sql(self, alias: str = "c") -> tuple[str, list[object]]:
        """A WHERE fragment (always valid, `1` when unfiltered) and its parameters."""
        clauses: list[str] = []
        params: list[object] = []
        if self.sources:
            clauses.append(f"{alias}.source IN ({','.join('?' * len(self.sources))})")
            params.extend(self.sources)
        if self.path_prefix:
            # substr instead of LIKE: paths may contain % and _.
            clauses.append(f"substr({alias}.path, 1, ?) = ?")
            params.extend([len(self.path_prefix), self.path_prefix])
        if self.acls is not None:
            clauses.append(f"{alias}.acl IN ({','.join('?' * len(self.acls)) or 'NULL'})")
            params.extend(self.acls)
        return (" AND ".join(clauses) or "1"), params


class Catalog:
    """SQLite catalog under the index folder. Safe to use from several threads: each thread
    gets its own connection; WAL mode lets searches read while a refresh writes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._guard = threading.Lock()
        # executescript commits on its own, so the schema carries its own transaction.
        self.db.executescript(f"BEGIN IMMEDIATE;{_SCHEMA}COMMIT;")
        self.set_meta("schema_version", str(SCHEMA_VERSION))

    # -- connections ---------------------------------------------------------------------

    @property
    def db(self) -> sqlite3.Connection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            connection.row_factory = sqlite3.Row
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            connection.execute("PRAGMA foreign_keys=ON")
            self._local.connection = connection
            with self._guard:
                self._connections.append(connection)
        return connection

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic write: committed on success, rolled back on any error."""
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def close(self) -> None:
        with self._guard:
            for connection in self._connections:
                connection.close()
            self._connections.clear()
        self._local = threading.local()

    # -- meta ----------------------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    # -- files ---------------------------------------------------------------------------

    def files(self) -> dict[tuple[str, str], FileRecord]:
        rows = self.db.execute("SELECT * FROM files").fetchall()
        return {(row["source"], row["path"]): FileRecord(**dict(row)) for row in rows}

    def file_chunk_ids(self, source: str, path: str) -> list[str]:
        rows = self.db.execute(
            "SELECT chunk_id FROM chunks WHERE source = ? AND path = ? ORDER BY ordinal", (source, path)
        )
        return [row[0] for row in rows]

    def counts(self) -> tuple[int, int]:
        """(documents, chunks) in the index."""
        documents = self.db.execute("SELECT count(*) FROM files").fetchone()[0]
        chunks = self.db.execute("SELECT count(*) FROM chunks").fetchone()[0]
        return documents, chunks

    # -- chunks --------------------------------------------------------------------------

    def live_ids(self, chunk_ids: Sequence[str]) -> set[str]:
        """The subset of `chunk_ids` that are live chunks."""
        live: set[str] = set()
        for start in range(0, len(chunk_ids), 500):
            part = chunk_ids[start : start + 500]
            rows = self.db.execute(f"SELECT chunk_id FROM chunks WHERE chunk_id IN ({','.join('?' * len(part))})", part)
            live.update(row[0] for row in rows)
        return live

    def chunk_for_text(self, text_hashes: Sequence[str]) -> dict[str, str]:
        """For each text hash already indexed somewhere, one live chunk id that has it."""
        found: dict[str, str] = {}
        for start in range(0, len(text_hashes), 500):
            part = text_hashes[start : start + 500]
            rows = self.db.execute(
                f"SELECT text_hash, min(chunk_id) FROM chunks WHERE text_hash IN ({','.join('?' * len(part))})"
                " GROUP BY text_hash",
                part,
            )
            found.update((row[0], row[1]) for row in rows)
        return found

    def chunks(self, chunk_ids: Sequence[str], where: ChunkFilter | None = None) -> dict[str, ChunkRecord]:
        """The live chunks among `chunk_ids` that pass `where`, by id."""
        condition, params = (where or ChunkFilter()).sql("c")
        found: dict[str, ChunkRecord] = {}
        for start in range(0, len(chunk_ids), 500):
            part = list(chunk_ids[start : start + 500])
            rows = self.db.execute(
                "SELECT c.chunk_id, c.source, c.path, c.ordinal, c.title, c.heading, c.text, c.text_hash, c.acl,"
                " f.url FROM chunks c JOIN files f ON f.source = c.source AND f.path = c.path"
                f" WHERE c.chunk_id IN ({','.join('?' * len(part))}) AND {condition}",
                [*part, *params],
            )
            found.update((row["chunk_id"], ChunkRecord(**dict(row))) for row in rows)
        return found

    def keyword_search(
        self, match: str, limit: int, where: ChunkFilter, per_document: int = 0
    ) -> list[tuple[str, float]]:
        """(chunk id, bm25 relevance, higher is better) for an FTS5 MATCH expression, best
        first, at most `per_document` chunks per file (0: no cap). Title and heading weigh
        more than body text: they name what a chunk is about."""
        condition, params = where.sql("c")
        cap = per_document if per_document > 0 else -1
        rows = self.db.execute(
            "SELECT chunk_id, rank FROM ("
            " SELECT chunk_id, rank, row_number() OVER (PARTITION BY source, path ORDER BY rank) AS nth FROM ("
            "  SELECT c.chunk_id, c.source, c.path, bm25(chunks_fts, 2.0, 2.0, 1.0) AS rank FROM chunks_fts"
            "  JOIN chunks c ON c.id = chunks_fts.rowid"
            f"  WHERE chunks_fts MATCH ? AND {condition}))"
            " WHERE ? < 0 OR nth <= ? ORDER BY rank LIMIT ?",
            [match, *params, cap, cap, limit],
        )
        return [(row[0], -row[1]) for row in rows]

    def matching_paths(self, where: ChunkFilter) -> list[str]:
        """Distinct file paths that pass `where` (used to push a path prefix into Chroma)."""
        condition, params = where.sql("c")
        rows = self.db.execute(f"SELECT DISTINCT c.path FROM files c WHERE {condition}", params)
        return [row[0] for row in rows]

    # -- permissions ---------------------------------------------------------------------

    def register_acl(self, db: sqlite3.Connection, principals: frozenset[str]) -> str:
        key = acl_key(principals)
        db.execute("INSERT OR IGNORE INTO acls VALUES (?, ?)", (key, json.dumps(sorted(principals))))
        return key

    def principals_of(self, acls: Iterable[str]) -> dict[str, frozenset[str]]:
        wanted = list(set(acls))
        if not wanted:
            return {}
        rows = self.db.execute(f"SELECT acl, principals FROM acls WHERE acl IN ({','.join('?' * len(wanted))})", wanted)
        return {row[0]: frozenset(json.loads(row[1])) for row in rows}

    def readable_acls(self, principals: frozenset[str]) -> tuple[str, ...]:
        """Acl keys a reader holding `principals` may read: any principal in common.
        Every reader holds `everyone`."""
        holder = principals | {EVERYONE}
        rows = self.db.execute("SELECT acl, principals FROM acls").fetchall()
        return tuple(sorted(row[0] for row in rows if holder & set(json.loads(row[1]))))

    def acls_in_use(self) -> frozenset[str]:
        """Acl keys some live chunk carries."""
        return frozenset(row[0] for row in self.db.execute("SELECT DISTINCT acl FROM chunks"))

    # -- writes (inside `transaction()`) ------------------------------------------------

    def replace_file(self, db: sqlite3.Connection, record: FileRecord, chunks: Sequence[ChunkRecord]) -> list[str]:
        """Make `chunks` the file's live chunks. Returns the vector ids no longer referenced,
        which are journaled as garbage in the same transaction."""
        old = set(self.file_chunk_ids(record.source, record.path))
        db.execute("DELETE FROM chunks WHERE source = ? AND path = ?", (record.source, record.path))
        db.execute("DELETE FROM files WHERE source = ? AND path = ?", (record.source, record.path))
        db.execute(
            "INSERT INTO files (source, path, size, mtime, sha256, title, url, owner, mode, acl, chunk_count)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                record.source,
                record.path,
                record.size,
                record.mtime,
                record.sha256,
                record.title,
                record.url,
                record.owner,
                record.mode,
                record.acl,
                record.chunk_count,
            ),
        )
        db.executemany(
            "INSERT INTO chunks (chunk_id, source, path, ordinal, title, heading, text, text_hash, acl)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(c.chunk_id, c.source, c.path, c.ordinal, c.title, c.heading, c.text, c.text_hash, c.acl) for c in chunks],
        )
        new = {chunk.chunk_id for chunk in chunks}
        db.executemany("DELETE FROM journal WHERE vector_id = ?", ((i,) for i in new))
        garbage = sorted(old - new)
        self._journal_garbage(db, garbage)
        return garbage

    def update_file(self, db: sqlite3.Connection, record: FileRecord) -> None:
        """Metadata-only change (touched, moved in time, new permissions or link): the
        chunks keep their text and vectors; only their acl follows the file's."""
        db.execute(
            "UPDATE files SET size = ?, mtime = ?, url = ?, owner = ?, mode = ?, acl = ?,"
            " indexed_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE source = ? AND path = ?",
            (record.size, record.mtime, record.url, record.owner, record.mode, record.acl, record.source, record.path),
        )
        db.execute(
            "UPDATE chunks SET acl = ? WHERE source = ? AND path = ? AND acl != ?",
            (record.acl, record.source, record.path, record.acl),
        )

    def delete_file(self, db: sqlite3.Connection, source: str, path: str) -> list[str]:
        """Remove a file and its chunks; returns (and journals) the freed vector ids."""
        garbage = self.file_chunk_ids(source, path)
        db.execute("DELETE FROM chunks WHERE source = ? AND path = ?", (source, path))
        db.execute("DELETE FROM files WHERE source = ? AND path = ?", (source, path))
        self._journal_garbage(db, garbage)
        return garbage

    def _journal_garbage(self, db: sqlite3.Connection, vector_ids: Sequence[str]) -> None:
        db.executemany("INSERT OR REPLACE INTO journal VALUES (?, 'garbage')", ((i,) for i in vector_ids))

    def files_readable_by(self, principals: frozenset[str]) -> list[FileRecord]:
        """Indexed files a reader holding `principals` may read (e.g. {"everyone"}: the
        documents anyone may see)."""
        readable = set(self.readable_acls(principals))
        return [record for record in self.files().values() if record.acl in readable]

    def documents_per_source(self) -> dict[str, tuple[int, int]]:
        """source → (documents, documents readable by `everyone`)."""
        files = self.files()
        principals = self.principals_of(record.acl for record in files.values())
        counts: dict[str, tuple[int, int]] = {}
        for (source, _), record in files.items():
            total, public = counts.get(source, (0, 0))
            counts[source] = (total + 1, public + (EVERYONE in principals.get(record.acl, frozenset())))
        return counts

    # -- failures ------------------------------------------------------------------------

    def record_failures(self, failed: Sequence[tuple[str, str, str]], sources: Iterable[str] | None = None) -> None:
        """After a refresh of `sources` (None: of every source): each (source, path, reason)
        in `failed` counts one more refresh in a row; what no longer fails is forgotten."""
        with self.transaction() as db:
            current = {(source, path) for source, path, _ in failed}
            wanted = None if sources is None else set(sources)
            rows = db.execute("SELECT source, path FROM failures").fetchall()
            db.executemany(
                "DELETE FROM failures WHERE source = ? AND path = ?",
                [
                    (row[0], row[1])
                    for row in rows
                    if (row[0], row[1]) not in current and (wanted is None or row[0] in wanted)
                ],
            )
            db.executemany(
                "INSERT INTO failures VALUES (?, ?, ?, 1) ON CONFLICT (source, path) DO UPDATE"
                " SET reason = excluded.reason, refreshes = refreshes + 1",
                list({(source, path): (source, path, reason) for source, path, reason in failed}.values()),
            )

    def failures(self, min_refreshes: int = 1) -> list[FailureRecord]:
        """What failed at the last refreshes, `min_refreshes` in a row or more, longest first."""
        rows = self.db.execute(
            "SELECT * FROM failures WHERE refreshes >= ? ORDER BY refreshes DESC, source, path", (min_refreshes,)
        )
        return [FailureRecord(**dict(row)) for row in rows]

    # -- vector journal ------------------------------------------------------------------

    def journal(self) -> dict[str, str]:
        return {row[0]: row[1] for row in self.db.execute("SELECT vector_id, state FROM journal")}

    def mark_pending(self, vector_ids: Iterable[str]) -> None:
        with self.transaction() as db:
            db.executemany("INSERT OR IGNORE INTO journal VALUES (?, 'pending')", ((i,) for i in vector_ids))

    def clear_journal(self, vector_ids: Iterable[str]) -> None:
        with self.transaction() as db:
            db.executemany("DELETE FROM journal WHERE vector_id = ?", ((i,) for i in vector_ids))
