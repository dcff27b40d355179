"""The PostgreSQL catalog: files, chunks, permissions, journal and failures in tables prefixed
`catalog_` (they share the bot's database without clashing), so that bot replicas and the
worker on several machines read and write one index.

The keyword index is PostgreSQL full-text search: a stored, weighted tsvector per chunk
(title A, heading B, body D; `english` configuration) under a GIN index. A chunk's score is
BM25-like: the sum over the question's terms of the term's inverse document frequency times
`ts_rank` of that term alone (which saturates with repetitions and is normalised by length).
Terms are bound parameters read by `plainto_tsquery`, so no question text is ever parsed as
tsquery syntax. Readers' principals are a text[] under a GIN index: the acls a reader may
read are found with one `&&` (overlap) query."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Computed,
    Connection,
    Double,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    create_engine,
    insert,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, TSVECTOR
from sqlalchemy.exc import OperationalError

from knowledge.errors import IndexUnavailableError
from knowledge.index.catalog import (
    SCHEMA_VERSION,
    ChunkFilter,
    ChunkRecord,
    FailureRecord,
    FileRecord,
    acl_key,
    batches,
)
from knowledge.types import EVERYONE

# Held (per transaction) while the tables are created, so that replicas starting together
# do not race on CREATE TABLE. Any fixed 64-bit number distinct from Lore's other locks.
SCHEMA_LOCK_KEY = int.from_bytes(hashlib.sha256(b"lore catalog schema").digest()[:8], "big", signed=True)


@dataclass(frozen=True)
class Ranking:
    """ts_rank's parameters: weights of {D (body), C (unused), B (heading), A (title)}, each
    at most 1, and its normalisation flags (0: none; 1: divide by 1 + log of the chunk's
    length; 2: by its length; 32: rank / (rank + 1)). The defaults were chosen on the
    Sourcegraph question set's tuning half (benchmarks/keyword_index.py --sweep): there they
    match FTS5 bm25's hit@5 (0.881) with the best MRR of the 24 candidates; chunks are short
    and of similar length, and length normalisation cost up to 31 points of hit@5."""

    weights: tuple[float, float, float, float] = (0.5, 0.0, 1.0, 1.0)
    normalization: int = 0


_NOW = "to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

metadata = MetaData()

meta_table = Table(
    "catalog_meta", metadata, Column("key", Text, primary_key=True), Column("value", Text, nullable=False)
)

files_table = Table(
    "catalog_files",
    metadata,
    Column("source", Text, nullable=False),
    Column("path", Text, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("mtime", Double, nullable=False),
    Column("sha256", Text, nullable=False),
    Column("title", Text, nullable=False),
    Column("url", Text, nullable=False),
    Column("owner", Text),
    Column("mode", Integer, nullable=False),
    Column("acl", Text, nullable=False),
    Column("chunk_count", Integer, nullable=False),
    Column("indexed_at", Text, nullable=False, server_default=text(_NOW)),
    PrimaryKeyConstraint("source", "path"),
)

chunks_table = Table(
    "catalog_chunks",
    metadata,
    Column("chunk_id", Text, primary_key=True),
    Column("source", Text, nullable=False),
    Column("path", Text, nullable=False),
    Column("ordinal", Integer, nullable=False),
    Column("title", Text, nullable=False),
    Column("heading", Text, nullable=False),
    Column("text", Text, nullable=False),
    Column("text_hash", Text, nullable=False),
    Column("acl", Text, nullable=False),
    Column(
        "search",
        TSVECTOR,
        Computed(
            "setweight(to_tsvector('english', title), 'A') || setweight(to_tsvector('english', heading), 'B')"
            " || setweight(to_tsvector('english', text), 'D')",
            persisted=True,
        ),
    ),
    ForeignKeyConstraint(["source", "path"], ["catalog_files.source", "catalog_files.path"]),
    Index("catalog_chunks_by_file", "source", "path"),
    Index("catalog_chunks_by_text", "text_hash"),
    Index("catalog_chunks_by_acl", "acl"),
    Index("catalog_chunks_search", "search", postgresql_using="gin"),
)

acls_table = Table(
    "catalog_acls",
    metadata,
    Column("acl", Text, primary_key=True),
    Column("principals", ARRAY(Text), nullable=False),
    Index("catalog_acls_principals", "principals", postgresql_using="gin"),
)

journal_table = Table(
    "catalog_journal",
    metadata,
    Column("vector_id", Text, primary_key=True),
    Column("state", Text, nullable=False),
)

failures_table = Table(
    "catalog_failures",
    metadata,
    Column("source", Text, nullable=False),
    Column("path", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("refreshes", Integer, nullable=False),
    PrimaryKeyConstraint("source", "path"),
)

_CHUNK_COLUMNS = "c.chunk_id, c.source, c.path, c.ordinal, c.title, c.heading, c.text, c.text_hash, c.acl"
_FILE_COLUMNS = "source, path, size, mtime, sha256, title, url, owner, mode, acl, chunk_count, indexed_at"

# BM25's inverse document frequency per term over all chunks, then idf × ts_rank(term) summed
# per chunk, at most :cap chunks per file (row_number), best first.
_KEYWORD_SQL = """
WITH terms AS (
    SELECT plainto_tsquery('english', term) AS query
    FROM unnest(CAST(:terms AS text[])) AS term
), total AS (
    SELECT count(*) AS n FROM catalog_chunks
), weighted AS (
    SELECT t.query, ln(1 + (total.n - df.n + 0.5) / (df.n + 0.5)) AS idf
    FROM terms t CROSS JOIN total
    CROSS JOIN LATERAL (SELECT count(*) AS n FROM catalog_chunks c WHERE c.search @@ t.query) AS df
    WHERE df.n > 0
), scored AS (
    SELECT c.chunk_id, c.source, c.path,
           sum(w.idf * ts_rank(CAST(:weights AS real[]), c.search, w.query, :normalization)) AS score
    FROM weighted w JOIN catalog_chunks c ON c.search @@ w.query
    WHERE {condition}
    GROUP BY c.chunk_id, c.source, c.path
), capped AS (
    SELECT chunk_id, score, row_number() OVER (PARTITION BY source, path ORDER BY score DESC, chunk_id) AS nth
    FROM scored
)
SELECT chunk_id, score FROM capped WHERE :cap < 0 OR nth <= :cap ORDER BY score DESC, chunk_id LIMIT :limit
"""


class PostgresCatalog:
    """The catalog in a PostgreSQL database (`url`: a SQLAlchemy URL, postgresql+psycopg://).
    Thread-safe: every call takes a pooled connection of its own."""

    def __init__(self, url: str, ranking: Ranking = Ranking()) -> None:
        self.url = url
        self.ranking = ranking
        self._engine = create_engine(url, pool_pre_ping=True)
        try:
            with self._engine.begin() as connection:
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK_KEY})
                metadata.create_all(connection)
                _set_meta(connection, "schema_version", str(SCHEMA_VERSION))
        except OperationalError as error:
            self._engine.dispose()
            raise IndexUnavailableError(
                f"the index catalog's PostgreSQL database cannot be reached ({error.orig}): check database_url"
                " and that the server is running."
            ) from error
        except BaseException:
            self._engine.dispose()
            raise

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        with self._engine.connect() as connection:
            yield connection

    @contextmanager
    def transaction(self) -> Iterator[PostgresWriter]:
        """One atomic write: committed on success, rolled back on any error."""
        with self._engine.begin() as connection:
            yield PostgresWriter(connection)

    def close(self) -> None:
        self._engine.dispose()

    # -- meta ----------------------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        with self._read() as connection:
            value = connection.execute(text("SELECT value FROM catalog_meta WHERE key = :key"), {"key": key}).scalar()
        return None if value is None else str(value)

    def set_meta(self, key: str, value: str) -> None:
        with self._engine.begin() as connection:
            _set_meta(connection, key, value)

    # -- files ---------------------------------------------------------------------------

    def files(self) -> dict[tuple[str, str], FileRecord]:
        with self._read() as connection:
            rows = (
                connection.execute(text(f"SELECT {_FILE_COLUMNS} FROM catalog_files ORDER BY source, path"))
                .mappings()
                .all()
            )
        return {(row["source"], row["path"]): FileRecord(**row) for row in rows}

    def file_chunk_ids(self, source: str, path: str) -> list[str]:
        with self._read() as connection:
            return _file_chunk_ids(connection, source, path)

    def counts(self) -> tuple[int, int]:
        with self._read() as connection:
            row = connection.execute(
                text("SELECT (SELECT count(*) FROM catalog_files), (SELECT count(*) FROM catalog_chunks)")
            ).one()
        return int(row[0]), int(row[1])

    # -- chunks --------------------------------------------------------------------------

    def live_ids(self, chunk_ids: Sequence[str]) -> set[str]:
        live: set[str] = set()
        with self._read() as connection:
            for part in batches(chunk_ids, 5000):
                rows = connection.execute(
                    text("SELECT chunk_id FROM catalog_chunks WHERE chunk_id = ANY(:ids)"), {"ids": part}
                )
                live.update(row[0] for row in rows)
        return live

    def chunk_for_text(self, text_hashes: Sequence[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        with self._read() as connection:
            for part in batches(text_hashes, 5000):
                rows = connection.execute(
                    text(
                        "SELECT text_hash, min(chunk_id) FROM catalog_chunks WHERE text_hash = ANY(:hashes)"
                        " GROUP BY text_hash"
                    ),
                    {"hashes": part},
                )
                found.update((row[0], row[1]) for row in rows)
        return found

    def chunks(self, chunk_ids: Sequence[str], where: ChunkFilter | None = None) -> dict[str, ChunkRecord]:
        condition, params = _filter_sql(where or ChunkFilter(), "c")
        found: dict[str, ChunkRecord] = {}
        with self._read() as connection:
            for part in batches(chunk_ids, 5000):
                rows = connection.execute(
                    text(
                        f"SELECT {_CHUNK_COLUMNS}, f.url FROM catalog_chunks c"
                        " JOIN catalog_files f ON f.source = c.source AND f.path = c.path"
                        f" WHERE c.chunk_id = ANY(:ids) AND {condition}"
                    ),
                    {"ids": part, **params},
                ).mappings()
                found.update((row["chunk_id"], ChunkRecord(**row)) for row in rows)
        return found

    def keyword_search(
        self, terms: Sequence[str], limit: int, where: ChunkFilter, per_document: int = 0
    ) -> list[tuple[str, float]]:
        if not terms:
            return []
        condition, params = _filter_sql(where, "c")
        with self._read() as connection:
            rows = connection.execute(
                text(_KEYWORD_SQL.format(condition=condition)),
                {
                    "terms": list(terms),
                    "weights": [float(weight) for weight in self.ranking.weights],
                    "normalization": self.ranking.normalization,
                    "cap": per_document if per_document > 0 else -1,
                    "limit": limit,
                    **params,
                },
            ).all()
        return [(row[0], float(row[1])) for row in rows]

    def matching_paths(self, where: ChunkFilter) -> list[str]:
        condition, params = _filter_sql(where, "c")
        with self._read() as connection:
            rows = connection.execute(text(f"SELECT DISTINCT c.path FROM catalog_files c WHERE {condition}"), params)
            return [row[0] for row in rows]

    # -- permissions ---------------------------------------------------------------------

    def principals_of(self, acls: Iterable[str]) -> dict[str, frozenset[str]]:
        wanted = list(set(acls))
        if not wanted:
            return {}
        with self._read() as connection:
            rows = connection.execute(
                text("SELECT acl, principals FROM catalog_acls WHERE acl = ANY(:acls)"), {"acls": wanted}
            )
            return {row[0]: frozenset(row[1]) for row in rows}

    def readable_acls(self, principals: frozenset[str]) -> tuple[str, ...]:
        with self._read() as connection:
            rows = connection.execute(
                text("SELECT acl FROM catalog_acls WHERE principals && CAST(:holder AS text[]) ORDER BY acl"),
                {"holder": sorted(principals | {EVERYONE})},
            )
            return tuple(row[0] for row in rows)

    def acls_in_use(self) -> frozenset[str]:
        with self._read() as connection:
            return frozenset(row[0] for row in connection.execute(text("SELECT DISTINCT acl FROM catalog_chunks")))

    def files_readable_by(self, principals: frozenset[str]) -> list[FileRecord]:
        with self._read() as connection:
            rows = (
                connection.execute(
                    text(
                        f"SELECT {', '.join('f.' + name for name in _FILE_COLUMNS.split(', '))} FROM catalog_files f"
                        " JOIN catalog_acls a ON a.acl = f.acl WHERE a.principals && CAST(:holder AS text[])"
                        " ORDER BY f.source, f.path"
                    ),
                    {"holder": sorted(principals | {EVERYONE})},
                )
                .mappings()
                .all()
            )
        return [FileRecord(**row) for row in rows]

    def documents_per_source(self) -> dict[str, tuple[int, int]]:
        with self._read() as connection:
            rows = connection.execute(
                text(
                    "SELECT f.source, count(*), count(*) FILTER (WHERE :everyone = ANY(a.principals))"
                    " FROM catalog_files f LEFT JOIN catalog_acls a ON a.acl = f.acl GROUP BY f.source"
                ),
                {"everyone": EVERYONE},
            )
            return {row[0]: (int(row[1]), int(row[2])) for row in rows}

    # -- failures ------------------------------------------------------------------------

    def record_failures(self, failed: Sequence[tuple[str, str, str]], sources: Iterable[str] | None = None) -> None:
        current = {(source, path): reason for source, path, reason in failed}
        wanted = None if sources is None else set(sources)
        with self._engine.begin() as connection:
            rows = connection.execute(text("SELECT source, path FROM catalog_failures")).all()
            gone = [
                {"source": row[0], "path": row[1]}
                for row in rows
                if (row[0], row[1]) not in current and (wanted is None or row[0] in wanted)
            ]
            if gone:
                connection.execute(text("DELETE FROM catalog_failures WHERE source = :source AND path = :path"), gone)
            if current:
                connection.execute(
                    text(
                        "INSERT INTO catalog_failures VALUES (:source, :path, :reason, 1) ON CONFLICT (source, path)"
                        " DO UPDATE SET reason = excluded.reason, refreshes = catalog_failures.refreshes + 1"
                    ),
                    [{"source": s, "path": p, "reason": r} for (s, p), r in current.items()],
                )

    def failures(self, min_refreshes: int = 1) -> list[FailureRecord]:
        with self._read() as connection:
            rows = connection.execute(
                text(
                    "SELECT source, path, reason, refreshes FROM catalog_failures WHERE refreshes >= :least"
                    " ORDER BY refreshes DESC, source, path"
                ),
                {"least": min_refreshes},
            ).mappings()
            return [FailureRecord(**row) for row in rows]

    # -- vector journal ------------------------------------------------------------------

    def journal(self) -> dict[str, str]:
        with self._read() as connection:
            return {row[0]: row[1] for row in connection.execute(text("SELECT vector_id, state FROM catalog_journal"))}

    def mark_pending(self, vector_ids: Iterable[str]) -> None:
        ids = [{"id": vector_id} for vector_id in vector_ids]
        if ids:
            with self._engine.begin() as connection:
                connection.execute(
                    text("INSERT INTO catalog_journal VALUES (:id, 'pending') ON CONFLICT DO NOTHING"), ids
                )

    def clear_journal(self, vector_ids: Iterable[str]) -> None:
        ids = list(vector_ids)
        if ids:
            with self._engine.begin() as connection:
                connection.execute(text("DELETE FROM catalog_journal WHERE vector_id = ANY(:ids)"), {"ids": ids})


class PostgresWriter:
    """The writes of one PostgreSQL transaction."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def register_acl(self, principals: frozenset[str]) -> str:
        key = acl_key(principals)
        self._connection.execute(
            text("INSERT INTO catalog_acls VALUES (:acl, :principals) ON CONFLICT DO NOTHING"),
            {"acl": key, "principals": sorted(principals)},
        )
        return key

    def replace_file(self, record: FileRecord, chunks: Sequence[ChunkRecord]) -> list[str]:
        connection = self._connection
        old = set(_file_chunk_ids(connection, record.source, record.path))
        file_key = {"source": record.source, "path": record.path}
        connection.execute(text("DELETE FROM catalog_chunks WHERE source = :source AND path = :path"), file_key)
        connection.execute(text("DELETE FROM catalog_files WHERE source = :source AND path = :path"), file_key)
        connection.execute(
            insert(files_table),
            {
                "source": record.source,
                "path": record.path,
                "size": record.size,
                "mtime": record.mtime,
                "sha256": record.sha256,
                "title": record.title,
                "url": record.url,
                "owner": record.owner,
                "mode": record.mode,
                "acl": record.acl,
                "chunk_count": record.chunk_count,
            },
        )
        if chunks:
            connection.execute(insert(chunks_table), [_chunk_row(chunk) for chunk in chunks])
            connection.execute(
                text("DELETE FROM catalog_journal WHERE vector_id = ANY(:ids)"),
                {"ids": [chunk.chunk_id for chunk in chunks]},
            )
        garbage = sorted(old - {chunk.chunk_id for chunk in chunks})
        self._journal_garbage(garbage)
        return garbage

    def update_file(self, record: FileRecord) -> None:
        self._connection.execute(
            text(
                "UPDATE catalog_files SET size = :size, mtime = :mtime, url = :url, owner = :owner, mode = :mode,"
                f" acl = :acl, indexed_at = {_NOW} WHERE source = :source AND path = :path"
            ),
            {
                "size": record.size,
                "mtime": record.mtime,
                "url": record.url,
                "owner": record.owner,
                "mode": record.mode,
                "acl": record.acl,
                "source": record.source,
                "path": record.path,
            },
        )
        self._connection.execute(
            text("UPDATE catalog_chunks SET acl = :acl WHERE source = :source AND path = :path AND acl != :acl"),
            {"acl": record.acl, "source": record.source, "path": record.path},
        )

    def delete_file(self, source: str, path: str) -> list[str]:
        garbage = _file_chunk_ids(self._connection, source, path)
        file_key = {"source": source, "path": path}
        self._connection.execute(text("DELETE FROM catalog_chunks WHERE source = :source AND path = :path"), file_key)
        self._connection.execute(text("DELETE FROM catalog_files WHERE source = :source AND path = :path"), file_key)
        self._journal_garbage(garbage)
        return garbage

    def _journal_garbage(self, vector_ids: Sequence[str]) -> None:
        if vector_ids:
            self._connection.execute(
                text(
                    "INSERT INTO catalog_journal SELECT id, 'garbage' FROM unnest(CAST(:ids AS text[])) AS id"
                    " ON CONFLICT (vector_id) DO UPDATE SET state = 'garbage'"
                ),
                {"ids": list(vector_ids)},
            )


def _set_meta(connection: Connection, key: str, value: str) -> None:
    connection.execute(
        text("INSERT INTO catalog_meta VALUES (:key, :value) ON CONFLICT (key) DO UPDATE SET value = excluded.value"),
        {"key": key, "value": value},
    )


def _file_chunk_ids(connection: Connection, source: str, path: str) -> list[str]:
    rows = connection.execute(
        text("SELECT chunk_id FROM catalog_chunks WHERE source = :source AND path = :path ORDER BY ordinal"),
        {"source": source, "path": path},
    )
    return [row[0] for row in rows]


def _chunk_row(chunk: ChunkRecord) -> dict[str, Any]:
    return {
        "chunk_id": chunk.chunk_id,
        "source": chunk.source,
        "path": chunk.path,
        "ordinal": chunk.ordinal,
        "title": chunk.title,
        "heading": chunk.heading,
        "text": chunk.text,
        "text_hash": chunk.text_hash,
        "acl": chunk.acl,
    }


def _filter_sql(where: ChunkFilter, alias: str) -> tuple[str, dict[str, object]]:
    """`where` as a WHERE fragment (always valid, `true` when unfiltered) and its bound
    parameters (names prefixed `filter_`)."""
    clauses: list[str] = []
    params: dict[str, object] = {}
    if where.sources:
        clauses.append(f"{alias}.source = ANY(CAST(:filter_sources AS text[]))")
        params["filter_sources"] = list(where.sources)
    if where.path_prefix:
        # left() instead of LIKE: paths may contain % and _.
        clauses.append(f"left({alias}.path, :filter_prefix_length) = :filter_prefix")
        params.update(filter_prefix_length=len(where.path_prefix), filter_prefix=where.path_prefix)
    if where.acls is not None:
        clauses.append(f"{alias}.acl = ANY(CAST(:filter_acls AS text[]))")
        params["filter_acls"] = list(where.acls)
    return (" AND ".join(clauses) or "true"), params
