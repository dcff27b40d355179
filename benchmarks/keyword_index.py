"""Keyword-index quality and latency: the SQLite catalog (FTS5, bm25) against the PostgreSQL
catalog (full-text search under a GIN index) on the same chunks, in one run.

    python benchmarks/keyword_index.py                                  # starts a throwaway PostgreSQL
    python benchmarks/keyword_index.py --postgres-url postgresql+psycopg://user@host/db
    python benchmarks/keyword_index.py --sweep                          # PostgreSQL ranking on the tuning half
    python benchmarks/keyword_index.py --json

No embedding: each corpus's Markdown files are chunked with Lore's Chunker and the bundled
embedder's tokenizer (as a refresh chunks them), and the same chunks are written into a SQLite
catalog and a PostgreSQL catalog (a database of its own, created on the server and dropped at
the end; VACUUM ANALYZE after the writes, as autovacuum would). For every answerable question, `keyword_search` on the question's terms (40
candidates, at most 2 chunks per file, as the retriever asks) ranks documents; a hit is a
document that is the question's `source` or in its `also_ok`. Document-level hit@1, hit@5 and
MRR@10 per catalog and the difference (PostgreSQL minus SQLite, in points), on the Sourcegraph
tuning half, its report half, the older Sourcegraph set and the 18F set. The PostgreSQL ranking
was chosen on the Sourcegraph tuning half only (`--sweep` shows the candidates there). Corpora
in ../shared/corpora; a set whose corpus is absent is skipped.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import itertools
import json
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from knowledge.chunking import Chunker  # noqa: E402
from knowledge.config import IndexSettings  # noqa: E402
from knowledge.embeddings import Embedder  # noqa: E402
from knowledge.index.catalog import Catalog, ChunkFilter, ChunkRecord, FileRecord, acl_key  # noqa: E402
from knowledge.index.keyword import keyword_terms  # noqa: E402
from knowledge.index.postgres_catalog import PostgresCatalog, Ranking  # noqa: E402
from knowledge.index.sqlite_catalog import SqliteCatalog  # noqa: E402
from knowledge.loaders import load_document  # noqa: E402
from knowledge.sync import chunk_id, text_hash  # noqa: E402
from knowledge.types import EVERYONE  # noqa: E402

CORPORA = ROOT.parent / "shared" / "corpora"
QUESTIONS = ROOT / "benchmarks" / "questions"
DEPTH = 10  # distinct documents ranked per question (MRR@10)
CANDIDATES = 40  # what the retriever asks of the keyword index (RetrievalSettings.candidates)
PER_DOCUMENT = 2  # RetrievalSettings.max_per_document
SWEEP_WEIGHTS = [(0.1, 0.0, 0.4, 1.0), (0.5, 0.0, 1.0, 1.0), (1.0, 0.0, 1.0, 1.0), (0.25, 0.0, 0.5, 1.0)]
SWEEP_NORMALIZATION = [0, 1, 2, 8, 32, 1 | 32]


@dataclass(frozen=True)
class Question:
    text: str
    answers: frozenset[str]  # `source` and `also_ok`


@dataclass(frozen=True)
class QuestionSet:
    name: str
    corpus: str  # folder under CORPORA
    file: str
    half: str | None = None  # only questions of this half ("tune" / "report")

    def load(self) -> list[Question]:
        questions = []
        for line in (QUESTIONS / self.file).read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            item = json.loads(line)
            if item.get("source") is None or (self.half is not None and item.get("half") != self.half):
                continue
            questions.append(Question(item["question"], frozenset([item["source"], *item.get("also_ok", [])])))
        return questions


SOURCEGRAPH = "sourcegraph-handbook/content"
SETS = (
    QuestionSet("sourcegraph tune", SOURCEGRAPH, "sourcegraph_employees.jsonl", "tune"),
    QuestionSet("sourcegraph report", SOURCEGRAPH, "sourcegraph_employees.jsonl", "report"),
    QuestionSet("sourcegraph older", SOURCEGRAPH, "sourcegraph_handbook.jsonl"),
    QuestionSet("18f", "18f-handbook/pages", "18f_handbook.jsonl"),
)


@dataclass(frozen=True)
class Quality:
    hit1: float
    hit5: float
    mrr: float
    questions: int
    mean_ms: float  # per question, keyword_search alone
    p95_ms: float


def evaluate(catalog: Catalog, questions: Sequence[Question]) -> Quality:
    ranks: list[int | None] = []
    seconds: list[float] = []
    for question in questions:
        started = time.perf_counter()
        hits = catalog.keyword_search(keyword_terms(question.text), CANDIDATES, ChunkFilter(), PER_DOCUMENT)
        seconds.append(time.perf_counter() - started)
        paths = catalog.chunks([chunk for chunk, _ in hits])
        ranking = list(dict.fromkeys(paths[chunk].path for chunk, _ in hits if chunk in paths))[:DEPTH]
        ranks.append(next((rank for rank, path in enumerate(ranking, 1) if path in question.answers), None))
    count = len(ranks) or 1
    return Quality(
        hit1=sum(rank == 1 for rank in ranks) / count,
        hit5=sum(rank is not None and rank <= 5 for rank in ranks) / count,
        mrr=sum(1 / rank for rank in ranks if rank is not None) / count,
        questions=len(ranks),
        mean_ms=1000 * statistics.fmean(seconds) if seconds else 0.0,
        p95_ms=1000 * sorted(seconds)[int(0.95 * (len(seconds) - 1))] if seconds else 0.0,
    )


def corpus_chunks(folder: Path, chunker: Chunker) -> list[tuple[FileRecord, list[ChunkRecord]]]:
    """Every Markdown file of `folder`, chunked the way a refresh chunks it, readable by everyone."""
    acl = acl_key({EVERYONE})
    files = []
    for path in sorted(folder.rglob("*.md")):
        relative = path.relative_to(folder).as_posix()
        data = path.read_bytes()
        document = load_document(Path(relative), data)
        chunks = [
            ChunkRecord(
                chunk_id=chunk_id("corpus", relative, chunk.ordinal, text_hash(chunk.indexed_text)),
                source="corpus",
                path=relative,
                ordinal=chunk.ordinal,
                title=chunk.title,
                heading=chunk.heading,
                text=chunk.text,
                text_hash=text_hash(chunk.indexed_text),
                acl=acl,
            )
            for chunk in chunker.chunk(document)
        ]
        stat = path.stat()
        record = FileRecord(
            source="corpus",
            path=relative,
            size=stat.st_size,
            mtime=stat.st_mtime,
            sha256=hashlib.sha256(data).hexdigest(),
            title=document.title,
            url=path.as_uri(),
            owner=None,
            mode=0o644,
            acl=acl,
            chunk_count=len(chunks),
        )
        files.append((record, chunks))
    return files


def fill(catalog: Catalog, files: Sequence[tuple[FileRecord, list[ChunkRecord]]]) -> float:
    """Write `files` into `catalog` (100 files per transaction); returns the seconds taken."""
    started = time.perf_counter()
    for start in range(0, len(files), 100):
        with catalog.transaction() as writer:
            writer.register_acl(frozenset({EVERYONE}))
            for record, chunks in files[start : start + 100]:
                writer.replace_file(record, chunks)
    return time.perf_counter() - started


@contextlib.contextmanager
def postgres_server(url: str | None) -> Iterator[str]:
    """`url`, or a throwaway PostgreSQL server (as the tests start one) for the run."""
    if url:
        yield url
        return
    from tests.support.postgres import ThrowawayPostgres

    server = ThrowawayPostgres.start()
    try:
        yield server.url
    finally:
        server.stop()


@contextlib.contextmanager
def scratch_database(server_url: str) -> Iterator[str]:
    """A new database on the server (the benchmark never writes into an existing one)."""
    import psycopg
    from sqlalchemy.engine import make_url

    name = f"lore_keyword_bench_{uuid.uuid4().hex[:8]}"
    parsed = make_url(server_url)
    admin = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield parsed.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def vacuum(url: str) -> float:
    """VACUUM ANALYZE the catalog's tables, as autovacuum does soon after a refresh inserted
    many rows (it empties the GIN index's pending list, which searches otherwise scan);
    returns the seconds taken."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    started = time.perf_counter()
    try:
        with engine.connect() as connection:
            for table in ("catalog_chunks", "catalog_files", "catalog_acls"):
                connection.execute(text(f"VACUUM ANALYZE {table}"))
    finally:
        engine.dispose()
    return time.perf_counter() - started


def keyword_quality(
    postgres_url: str,
    corpora: Path = CORPORA,
    rankings: Sequence[Ranking] = (Ranking(),),
    sets: Sequence[QuestionSet] = SETS,
    log: bool = False,
) -> dict[str, object]:
    """SQLite FTS5 against PostgreSQL full-text search on each question set whose corpus is
    present: {"sets": {name: {"sqlite": Quality, "postgres": {ranking: Quality}, ...}},
    "corpora": {...}} as plain dicts. `postgres_url`: a server where a scratch database may be
    created (and is dropped afterwards)."""
    embedder = Embedder()
    # As KnowledgeBase chunks: MiniLM counts [CLS] and [SEP] inside its maximum length.
    chunker = Chunker(embedder.count_tokens, chunk_tokens=min(IndexSettings().chunk_tokens, embedder.max_tokens - 2))
    result: dict[str, dict[str, object]] = {"sets": {}, "corpora": {}}
    for corpus, group in itertools.groupby(sets, key=lambda s: s.corpus):
        folder = corpora / corpus
        members = list(group)
        if not folder.is_dir():
            for member in members:
                result["sets"][member.name] = {"skipped": f"corpus {folder} absent"}
            continue
        started = time.perf_counter()
        files = corpus_chunks(folder, chunker)
        chunk_seconds = time.perf_counter() - started
        if log:
            print(f"{corpus}: {len(files)} files, {sum(len(c) for _, c in files)} chunks", file=sys.stderr)
        with tempfile.TemporaryDirectory(prefix="lore-keyword-") as work, scratch_database(postgres_url) as url:
            sqlite = SqliteCatalog(Path(work) / "catalog.sqlite3")
            postgres = PostgresCatalog(url)
            try:
                result["corpora"][corpus] = {
                    "files": len(files),
                    "chunks": sum(len(chunks) for _, chunks in files),
                    "chunking_seconds": round(chunk_seconds, 1),
                    "sqlite_write_seconds": round(fill(sqlite, files), 1),
                    "postgres_write_seconds": round(fill(postgres, files), 1),
                    "postgres_vacuum_seconds": round(vacuum(url), 1),
                }
                for member in members:
                    questions = member.load()
                    entry: dict[str, object] = {"sqlite": asdict(evaluate(sqlite, questions)), "postgres": {}}
                    for ranking in rankings:
                        ranked = PostgresCatalog(url, ranking)
                        try:
                            quality = asdict(evaluate(ranked, questions))
                        finally:
                            ranked.close()
                        entry["postgres"][_label(ranking)] = quality  # type: ignore[index]
                    result["sets"][member.name] = entry
                    if log:
                        print(f"  {member.name}: done", file=sys.stderr)
            finally:
                sqlite.close()
                postgres.close()
    return result


def _label(ranking: Ranking) -> str:
    return f"weights={list(ranking.weights)} normalization={ranking.normalization}"


def report(result: dict[str, object]) -> str:
    lines = []
    for corpus, figures in result["corpora"].items():  # type: ignore[attr-defined]
        lines.append(f"{corpus}: {figures}")
    lines.append(f"{'set':<20} {'catalog':<10} {'n':>3} {'hit@1':>6} {'hit@5':>6} {'MRR':>6} {'ms/q':>6} {'p95':>6}")
    for name, entry in result["sets"].items():  # type: ignore[attr-defined]
        if "skipped" in entry:
            lines.append(f"{name:<20} skipped: {entry['skipped']}")
            continue
        base = entry["sqlite"]
        lines.append(_row(name, "sqlite", base))
        for label, quality in entry["postgres"].items():
            lines.append(_row("", "postgres", quality) + f"  {label}")
            lines.append(
                f"{'':<20} {'pg - lite':<10} {'':>3} {100 * (quality['hit1'] - base['hit1']):>+6.1f}"
                f" {100 * (quality['hit5'] - base['hit5']):>+6.1f} {100 * (quality['mrr'] - base['mrr']):>+6.1f}"
                f" {quality['mean_ms'] / base['mean_ms']:>5.1f}x  (points; latency ratio)"
            )
    return "\n".join(lines)


def _row(name: str, catalog: str, quality: dict[str, float]) -> str:
    return (
        f"{name:<20} {catalog:<10} {quality['questions']:>3} {quality['hit1']:>6.3f} {quality['hit5']:>6.3f}"
        f" {quality['mrr']:>6.3f} {quality['mean_ms']:>6.1f} {quality['p95_ms']:>6.1f}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres-url", default=None, help="a server to create a scratch database on")
    parser.add_argument("--corpora", type=Path, default=CORPORA)
    parser.add_argument("--sweep", action="store_true", help="PostgreSQL ranking candidates, on the tuning half only")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    args = parser.parse_args()
    if not any((args.corpora / s.corpus).is_dir() for s in SETS):
        print(f"skipped: no corpus under {args.corpora}")
        return 0
    if args.sweep:
        rankings = [Ranking(w, n) for w, n in itertools.product(SWEEP_WEIGHTS, SWEEP_NORMALIZATION)]
        sets: Sequence[QuestionSet] = SETS[:1]
    else:
        rankings, sets = [Ranking()], SETS
    with postgres_server(args.postgres_url) as server:
        result = keyword_quality(server, args.corpora, rankings, sets, log=True)
    print(json.dumps(result, indent=2) if args.json else report(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
