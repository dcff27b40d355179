"""The SQLite catalog: one file under the index folder, its keyword index an FTS5 table over
the chunks (bm25). The zero-configuration default; it serves one machine."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from knowledge.index.catalog import (
    SCHEMA_VERSION,
    ChunkFilter,
    ChunkRecord,
    FailureRecord,
    FileRecord,
    acl_key,
    batches,
)
from knowledge.index.keyword import fts5_query
from knowledge.types import EVERYONE

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


class SqliteCatalog:
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
    def _begin(self) -> Iterator[sqlite3.Connection]:
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    @contextmanager
    def transaction(self) -> Iterator[SqliteWriter]:
        """One atomic write: committed on success, rolled back on any error."""
        with self._begin() as db:
            yield SqliteWriter(db)

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
        with self._begin() as db:
            db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    # -- files ---------------------------------------------------------------------------

    def files(self) -> dict[tuple[str, str], FileRecord]:
        rows = self.db.execute("SELECT * FROM files").fetchall()
        return {(row["source"], row["path"]): FileRecord(**dict(row)) for row in rows}

    def file_chunk_ids(self, source: str, path: str) -> list[str]:
        return _file_chunk_ids(self.db, source, path)

    def counts(self) -> tuple[int, int]:
        documents = self.db.execute("SELECT count(*) FROM files").fetchone()[0]
        chunks = self.db.execute("SELECT count(*) FROM chunks").fetchone()[0]
        return documents, chunks

    # -- chunks --------------------------------------------------------------------------

    def live_ids(self, chunk_ids: Sequence[str]) -> set[str]:
        live: set[str] = set()
        for part in batches(chunk_ids):
            rows = self.db.execute(f"SELECT chunk_id FROM chunks WHERE chunk_id IN ({_marks(part)})", part)
            live.update(row[0] for row in rows)
        return live

    def chunk_for_text(self, text_hashes: Sequence[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        for part in batches(text_hashes):
            rows = self.db.execute(
                f"SELECT text_hash, min(chunk_id) FROM chunks WHERE text_hash IN ({_marks(part)}) GROUP BY text_hash",
                part,
            )
            found.update((row[0], row[1]) for row in rows)
        return found

    def chunks(self, chunk_ids: Sequence[str], where: ChunkFilter | None = None) -> dict[str, ChunkRecord]:
        condition, params = _filter_sql(where or ChunkFilter(), "c")
        found: dict[str, ChunkRecord] = {}
        for part in batches(chunk_ids):
            rows = self.db.execute(
                "SELECT c.chunk_id, c.source, c.path, c.ordinal, c.title, c.heading, c.text, c.text_hash, c.acl,"
                " f.url FROM chunks c JOIN files f ON f.source = c.source AND f.path = c.path"
                f" WHERE c.chunk_id IN ({_marks(part)}) AND {condition}",
                [*part, *params],
            )
            found.update((row["chunk_id"], ChunkRecord(**dict(row))) for row in rows)
        return found

    def keyword_search(
        self, terms: Sequence[str], limit: int, where: ChunkFilter, per_document: int = 0
    ) -> list[tuple[str, float]]:
        """bm25 over an FTS5 query that quotes every term; title and heading weigh twice the
        body text."""
        if not terms:
            return []
        condition, params = _filter_sql(where, "c")
        cap = per_document if per_document > 0 else -1
        rows = self.db.execute(
            "SELECT chunk_id, rank FROM ("
            " SELECT chunk_id, rank, row_number() OVER (PARTITION BY source, path ORDER BY rank) AS nth FROM ("
            "  SELECT c.chunk_id, c.source, c.path, bm25(chunks_fts, 2.0, 2.0, 1.0) AS rank FROM chunks_fts"
            "  JOIN chunks c ON c.id = chunks_fts.rowid"
            f"  WHERE chunks_fts MATCH ? AND {condition}))"
            " WHERE ? < 0 OR nth <= ? ORDER BY rank LIMIT ?",
            [fts5_query(terms), *params, cap, cap, limit],
        )
        return [(row[0], -row[1]) for row in rows]

    def matching_paths(self, where: ChunkFilter) -> list[str]:
        condition, params = _filter_sql(where, "c")
        rows = self.db.execute(f"SELECT DISTINCT c.path FROM files c WHERE {condition}", params)
        return [row[0] for row in rows]

    # -- permissions ---------------------------------------------------------------------

    def principals_of(self, acls: Iterable[str]) -> dict[str, frozenset[str]]:
        wanted = list(set(acls))
        if not wanted:
            return {}
        rows = self.db.execute(f"SELECT acl, principals FROM acls WHERE acl IN ({_marks(wanted)})", wanted)
        return {row[0]: frozenset(json.loads(row[1])) for row in rows}

    def readable_acls(self, principals: frozenset[str]) -> tuple[str, ...]:
        holder = principals | {EVERYONE}
        rows = self.db.execute("SELECT acl, principals FROM acls").fetchall()
        return tuple(sorted(row[0] for row in rows if holder & set(json.loads(row[1]))))

    def acls_in_use(self) -> frozenset[str]:
        return frozenset(row[0] for row in self.db.execute("SELECT DISTINCT acl FROM chunks"))

    def files_readable_by(self, principals: frozenset[str]) -> list[FileRecord]:
        readable = set(self.readable_acls(principals))
        return [record for record in self.files().values() if record.acl in readable]

    def documents_per_source(self) -> dict[str, tuple[int, int]]:
        files = self.files()
        principals = self.principals_of(record.acl for record in files.values())
        counts: dict[str, tuple[int, int]] = {}
        for (source, _), record in files.items():
            total, public = counts.get(source, (0, 0))
            counts[source] = (total + 1, public + (EVERYONE in principals.get(record.acl, frozenset())))
        return counts

    # -- failures ------------------------------------------------------------------------

    def record_failures(self, failed: Sequence[tuple[str, str, str]], sources: Iterable[str] | None = None) -> None:
        with self._begin() as db:
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
        rows = self.db.execute(
            "SELECT * FROM failures WHERE refreshes >= ? ORDER BY refreshes DESC, source, path", (min_refreshes,)
        )
        return [FailureRecord(**dict(row)) for row in rows]

    # -- vector journal ------------------------------------------------------------------

    def journal(self) -> dict[str, str]:
        return {row[0]: row[1] for row in self.db.execute("SELECT vector_id, state FROM journal")}

    def mark_pending(self, vector_ids: Iterable[str]) -> None:
        with self._begin() as db:
            db.executemany("INSERT OR IGNORE INTO journal VALUES (?, 'pending')", ((i,) for i in vector_ids))

    def clear_journal(self, vector_ids: Iterable[str]) -> None:
        with self._begin() as db:
            db.executemany("DELETE FROM journal WHERE vector_id = ?", ((i,) for i in vector_ids))


class SqliteWriter:
    """The writes of one SQLite transaction."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def register_acl(self, principals: frozenset[str]) -> str:
        key = acl_key(principals)
        self._db.execute("INSERT OR IGNORE INTO acls VALUES (?, ?)", (key, json.dumps(sorted(principals))))
        return key

    def replace_file(self, record: FileRecord, chunks: Sequence[ChunkRecord]) -> list[str]:
        db = self._db
        old = set(_file_chunk_ids(db, record.source, record.path))
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
        self._journal_garbage(garbage)
        return garbage

    def update_file(self, record: FileRecord) -> None:
        self._db.execute(
            "UPDATE files SET size = ?, mtime = ?, url = ?, owner = ?, mode = ?, acl = ?,"
            " indexed_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE source = ? AND path = ?",
            (record.size, record.mtime, record.url, record.owner, record.mode, record.acl, record.source, record.path),
        )
        self._db.execute(
            "UPDATE chunks SET acl = ? WHERE source = ? AND path = ? AND acl != ?",
            (record.acl, record.source, record.path, record.acl),
        )

    def delete_file(self, source: str, path: str) -> list[str]:
        garbage = _file_chunk_ids(self._db, source, path)
        self._db.execute("DELETE FROM chunks WHERE source = ? AND path = ?", (source, path))
        self._db.execute("DELETE FROM files WHERE source = ? AND path = ?", (source, path))
        self._journal_garbage(garbage)
        return garbage

    def _journal_garbage(self, vector_ids: Sequence[str]) -> None:
        self._db.executemany("INSERT OR REPLACE INTO journal VALUES (?, 'garbage')", ((i,) for i in vector_ids))


def _file_chunk_ids(db: sqlite3.Connection, source: str, path: str) -> list[str]:
    rows = db.execute("SELECT chunk_id FROM chunks WHERE source = ? AND path = ? ORDER BY ordinal", (source, path))
    return [row[0] for row in rows]


def _marks(values: Sequence[object]) -> str:
    return ",".join("?" * len(values))


def _filter_sql(where: ChunkFilter, alias: str) -> tuple[str, list[object]]:
    """`where` as a WHERE fragment (always valid, `1` when unfiltered) and its parameters."""
    clauses: list[str] = []
    params: list[object] = []
    if where.sources:
        clauses.append(f"{alias}.source IN ({_marks(where.sources)})")
        params.extend(where.sources)
    if where.path_prefix:
        # substr instead of LIKE: paths may contain % and _.
        clauses.append(f"substr({alias}.path, 1, ?) = ?")
        params.extend([len(where.path_prefix), where.path_prefix])
    if where.acls is not None:
        clauses.append(f"{alias}.acl IN ({_marks(where.acls) or 'NULL'})")
        params.extend(where.acls)
    return (" AND ".join(clauses) or "1"), params
