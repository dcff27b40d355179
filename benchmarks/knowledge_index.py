"""Indexing throughput, refresh cost, retrieval quality and permission-filter cost of Lore's
knowledge index on the Sourcegraph handbook, beside the tutorial pipeline, in one run.

    python benchmarks/knowledge_index.py                     # the whole handbook (15-25 min on 2 cores)
    python benchmarks/knowledge_index.py --limit-files 150   # a quick look on a subset
    python benchmarks/knowledge_index.py --json              # the same figures as one JSON object

The tutorial baseline is built the way most tutorials do it: every .md file read as text,
RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200), the same MiniLM through
sentence-transformers (batches of 32), one Chroma collection, dense top-5. Lore indexes a copy
of the corpus with `KnowledgeBase.refresh(full=True)` into a temporary home; then refreshes
with nothing changed, after touching 1% of the files (mtime only), and after editing 1% of
them. Quality is measured at document level (the first k distinct documents) on
`benchmarks/questions/sourcegraph_handbook.jsonl`; a hit is a result whose file is the
question's `source` or one of its `also_ok`. Both embedders are loaded before the clocks
start (Lore's exports its ONNX graph on first use, once per machine). Skips cleanly when the
corpus is absent.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from knowledge.config import FolderSourceSettings, IndexSettings, RetrievalSettings  # noqa: E402
from knowledge.embeddings import Embedder, bundled_embedding_model  # noqa: E402
from knowledge.knowledge_base import KnowledgeBase  # noqa: E402
from knowledge.types import EVERYONE, SearchFilters  # noqa: E402

CORPUS = ROOT.parent / "shared" / "corpora" / "sourcegraph-handbook" / "content"
QUESTIONS = ROOT / "benchmarks" / "questions" / "sourcegraph_handbook.jsonl"
DEPTH = 10  # distinct documents ranked per question (MRR@10)
SEED = 20261129


@dataclass(frozen=True)
class Question:
    text: str
    answers: frozenset[str]  # `source` and `also_ok`; empty = unanswerable


@dataclass(frozen=True)
class Quality:
    hit1: float
    hit5: float
    mrr: float
    questions: int

    @staticmethod
    def of(rankings: Sequence[list[str]], questions: Sequence[Question]) -> Quality:
        ranks = [
            next((rank for rank, path in enumerate(ranking, 1) if path in question.answers), None)
            for ranking, question in zip(rankings, questions, strict=True)
        ]
        count = len(ranks) or 1
        return Quality(
            hit1=sum(rank == 1 for rank in ranks) / count,
            hit5=sum(rank is not None and rank <= 5 for rank in ranks) / count,
            mrr=sum(1 / rank for rank in ranks if rank is not None) / count,
            questions=len(ranks),
        )


@dataclass(frozen=True)
class IndexRun:
    seconds: float
    cpu_seconds: float  # this process's CPU time: what the work cost, whatever else the machine runs
    chunks: int
    files: int
    megabytes: float

    @property
    def chunks_per_second(self) -> float:
        return self.chunks / self.seconds

    @property
    def files_per_second(self) -> float:
        return self.files / self.seconds

    @property
    def megabytes_per_second(self) -> float:
        return self.megabytes / self.seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--limit-files", type=int, default=None, help="index only N Markdown files (question sources first)"
    )
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument(
        "--workdir", type=Path, default=None, help="keep the corpus copy and both indexes here (must not exist)"
    )
    parser.add_argument("--raw-embedding-text", action="store_true", help="ablation: Lore embeds texts unchanged")
    parser.add_argument(
        "--embedder-backend", choices=("onnx", "torch"), default="onnx", help="ablation: Lore's embedder backend"
    )
    args = parser.parse_args()
    if not args.corpus.is_dir():
        print(f"skipped: the corpus folder {args.corpus} is absent")
        return 0
    questions_all = load_questions(QUESTIONS)

    with contextlib.ExitStack() as stack:
        if args.workdir:
            args.workdir.mkdir(parents=True)
        work = args.workdir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="lore-bench-")))
        corpus = work / "corpus"
        markdown = copy_corpus(args.corpus, corpus, args.limit_files, questions_all)
        answerable = [q for q in questions_all if q.answers and q.answers & set(markdown)]
        unanswerable = [q for q in questions_all if not q.answers]
        megabytes = sum((corpus / path).stat().st_size for path in markdown) / 1e6
        log(f"corpus: {len(markdown)} Markdown files, {megabytes:.1f} MB; {len(answerable)} answerable questions")

        baseline = TutorialBaseline(work / "baseline")
        log("tutorial baseline: indexing ...")
        baseline_run = baseline.index(corpus, markdown, megabytes)
        log(f"tutorial baseline: {baseline_run}")

        embedder = Embedder(
            backend=args.embedder_backend,
            **({"text_view": str} if args.raw_embedding_text else {}),
        )
        knowledge = KnowledgeBase(
            work / "lore-home",
            [FolderSourceSettings(name="handbook", path=corpus)],
            IndexSettings(),
            RetrievalSettings(),
            embedder=embedder,
            permissions=lambda file: frozenset({EVERYONE}),  # a public handbook
        )
        try:
            log("lore: full index ...")
            started, cpu = time.perf_counter(), time.process_time()
            report = knowledge.refresh(full=True)
            lore_run = IndexRun(
                time.perf_counter() - started,
                time.process_time() - cpu,
                knowledge.status().chunks,
                len(markdown),
                megabytes,
            )
            log(f"lore: {lore_run}; {report.to_dict()}")
            refreshes = measure_refreshes(knowledge, corpus, markdown)

            log("quality ...")
            rankers: dict[str, Callable[[str], list[str]]] = {
                "lore hybrid": lambda q: documents(knowledge, q, "hybrid"),
                "lore dense": lambda q: documents(knowledge, q, "dense"),
                "lore keyword": lambda q: documents(knowledge, q, "keyword"),
                "tutorial baseline": baseline.documents,
            }
            quality = {
                name: Quality.of([rank(q.text) for q in answerable], answerable) for name, rank in rankers.items()
            }
            permissions = measure_permissions(knowledge, answerable, answerable + unanswerable)
        finally:
            knowledge.close()

    figures = {
        "corpus": {
            "markdown_files": len(markdown),
            "megabytes": round(megabytes, 2),
            "answerable_questions": len(answerable),
        },
        "baseline_index": run_dict(baseline_run),
        "lore_index": run_dict(lore_run),
        "throughput_ratio": {
            "files_per_second": round(lore_run.files_per_second / baseline_run.files_per_second, 2),
            "megabytes_per_second": round(lore_run.megabytes_per_second / baseline_run.megabytes_per_second, 2),
            "cpu_seconds": round(baseline_run.cpu_seconds / lore_run.cpu_seconds, 2),
        },
        "refresh": refreshes
        | {"unchanged_fraction_of_full": round(refreshes["unchanged_seconds"] / lore_run.seconds, 4)},
        "quality": {name: vars(value) for name, value in quality.items()},
        "permissions": permissions,
        "embedder": {"backend": embedder.backend, "raw_embedding_text": args.raw_embedding_text},
    }
    print(json.dumps(figures, indent=2) if args.json else render(figures))
    return 0


class TutorialBaseline:
    """The pipeline most RAG tutorials build, measured end to end (read, split, embed, store)."""

    def __init__(self, folder: Path) -> None:
        import chromadb
        from sentence_transformers import SentenceTransformer

        self.model = SentenceTransformer(str(bundled_embedding_model()), device="cpu", local_files_only=True)
        self.client = chromadb.PersistentClient(path=str(folder))
        self.collection = self.client.create_collection("tutorial", embedding_function=None)

    def index(self, corpus: Path, markdown: Sequence[str], megabytes: float) -> IndexRun:
        from langchain_text_splitters import RecursiveCharacterTextSplitter

        started, cpu = time.perf_counter(), time.process_time()
        splitter = RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200)
        texts: list[str] = []
        paths: list[str] = []
        for path in markdown:
            pieces = splitter.split_text((corpus / path).read_text(encoding="utf-8", errors="replace"))
            texts.extend(pieces)
            paths.extend([path] * len(pieces))
        vectors = self.model.encode(texts, batch_size=32, normalize_embeddings=True, convert_to_numpy=True)
        step = self.client.get_max_batch_size()
        for start in range(0, len(texts), step):
            end = start + step
            self.collection.add(
                ids=[str(i) for i in range(start, min(end, len(texts)))],
                embeddings=vectors[start:end],
                documents=texts[start:end],
                metadatas=[{"source": path} for path in paths[start:end]],
            )
        return IndexRun(time.perf_counter() - started, time.process_time() - cpu, len(texts), len(markdown), megabytes)

    def documents(self, query: str) -> list[str]:
        """Distinct documents of the top chunks. The tutorial reads the top 5 chunks; looking
        deeper for 10 distinct documents only helps its hit@5 and MRR."""
        vector = self.model.encode([query], normalize_embeddings=True, convert_to_numpy=True)
        found = self.collection.query(query_embeddings=vector, n_results=60, include=["metadatas"])
        return list(dict.fromkeys(str(meta["source"]) for meta in found["metadatas"][0]))[:DEPTH]


def documents(knowledge: KnowledgeBase, query: str, mode: str, filters: SearchFilters | None = None) -> list[str]:
    """The first DEPTH distinct documents Lore ranks for `query`."""
    passages = knowledge.retriever.search(query, k=DEPTH, filters=filters, mode=mode, max_per_document=1)  # type: ignore[arg-type]
    return list(dict.fromkeys(passage.path for passage in passages))


def measure_refreshes(knowledge: KnowledgeBase, corpus: Path, markdown: Sequence[str]) -> dict[str, object]:
    """Refresh with nothing changed, after touching 1% of files (mtime only) and after editing 1%."""
    log("lore: refresh, nothing changed ...")
    unchanged = timed(knowledge.refresh)
    count = max(1, math.ceil(len(markdown) / 100))
    picked = random.Random(SEED).sample(sorted(markdown), 2 * count)
    touched, edited = picked[:count], picked[count:]
    for path in touched:
        file = corpus / path
        stat = file.stat()
        # A later mtime and the same content: the sync must re-read and hash, not re-embed.
        file.touch()
        if file.stat().st_mtime_ns == stat.st_mtime_ns:  # coarse file-system clocks
            os.utime(file, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    log(f"lore: refresh after touching {count} files ...")
    after_touch = timed(knowledge.refresh)
    for path in edited:
        with (corpus / path).open("a", encoding="utf-8") as handle:
            handle.write("\n\nThis page was reviewed for the quarterly handbook audit.\n")
    log(f"lore: refresh after editing {count} files ...")
    after_edit = timed(knowledge.refresh)
    return {
        "unchanged_seconds": round(unchanged[0], 3),
        "files_touched": count,
        "touched_seconds": round(after_touch[0], 3),
        "touched_report": after_touch[1].to_dict(),
        "edited_seconds": round(after_edit[0], 3),
        "edited_report": after_edit[1].to_dict(),
    }


def measure_permissions(
    knowledge: KnowledgeBase, answerable: Sequence[Question], asked: Sequence[Question]
) -> dict[str, object]:
    """Hybrid retrieval with and without a principals filter (every document is `everyone`'s):
    latency p50 over every question, alternating on and off over three rounds so machine load
    hits both alike; hit@5 and the exact ranking per question."""
    reader = SearchFilters(principals=frozenset({EVERYONE}))
    for question in asked[:5]:  # warm caches (query embedding path, SQLite pages) for both
        documents(knowledge, question.text, "hybrid")
        documents(knowledge, question.text, "hybrid", reader)
    latencies: dict[str, list[float]] = {"off": [], "on": []}
    rankings: dict[str, dict[str, list[str]]] = {"off": {}, "on": {}}
    for _ in range(3):
        for question in asked:
            for name, filters in (("off", None), ("on", reader)):
                started = time.perf_counter()
                rankings[name][question.text] = documents(knowledge, question.text, "hybrid", filters)
                latencies[name].append(time.perf_counter() - started)
    quality = {name: Quality.of([rankings[name][q.text] for q in answerable], answerable) for name in rankings}
    off_p50, on_p50 = (statistics.median(latencies[name]) * 1000 for name in ("off", "on"))
    return {
        "p50_ms_off": round(off_p50, 1),
        "p50_ms_on": round(on_p50, 1),
        "latency_ratio": round(on_p50 / off_p50, 3),
        "hit5_off": quality["off"].hit5,
        "hit5_on": quality["on"].hit5,
        "identical_rankings": rankings["off"] == rankings["on"],
        "searches": len(latencies["on"]),
    }


def load_questions(path: Path) -> list[Question]:
    questions = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            answers = [row["source"], *row.get("also_ok", [])] if row.get("source") else []
            questions.append(Question(row["question"], frozenset(answers)))
    return questions


def copy_corpus(source: Path, target: Path, limit: int | None, questions: Sequence[Question]) -> list[str]:
    """Copy the corpus (all of it, images included, or `limit` Markdown files: the questions'
    sources first, then others picked with a fixed seed); return the copied Markdown paths."""
    every = sorted(path.relative_to(source).as_posix() for path in source.rglob("*.md"))
    if limit is None:
        shutil.copytree(source, target)
        return every
    wanted = [path for question in questions for path in sorted(question.answers) if path in every]
    rest = [path for path in every if path not in set(wanted)]
    random.Random(SEED).shuffle(rest)
    chosen = list(dict.fromkeys(wanted + rest))[:limit]
    for path in chosen:
        (target / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source / path, target / path)
    return sorted(chosen)


def timed(refresh: Callable[[], object]) -> tuple[float, object]:
    started = time.perf_counter()
    result = refresh()
    return time.perf_counter() - started, result


def run_dict(run: IndexRun) -> dict[str, float]:
    return {
        "seconds": round(run.seconds, 1),
        "cpu_seconds": round(run.cpu_seconds, 1),
        "chunks": run.chunks,
        "chunks_per_second": round(run.chunks_per_second, 2),
        "files_per_second": round(run.files_per_second, 3),
        "megabytes_per_second": round(run.megabytes_per_second, 4),
    }


def render(figures: dict[str, object]) -> str:
    corpus, base, lore = figures["corpus"], figures["baseline_index"], figures["lore_index"]
    ratio, refresh, perms = figures["throughput_ratio"], figures["refresh"], figures["permissions"]
    assert isinstance(corpus, dict) and isinstance(base, dict) and isinstance(lore, dict)
    assert isinstance(ratio, dict) and isinstance(refresh, dict) and isinstance(perms, dict)
    quality = figures["quality"]
    assert isinstance(quality, dict)
    lines = [
        f"Sourcegraph handbook: {corpus['markdown_files']} Markdown files, {corpus['megabytes']} MB, "
        f"{corpus['answerable_questions']} answerable questions",
        "",
        f"{'indexing':<34}{'seconds':>9}{'cpu s':>8}{'chunks':>8}{'chunks/s':>10}{'files/s':>9}{'MB/s':>8}",
    ]
    for name, run in (("tutorial baseline (1000/200, ST)", base), ("lore full refresh", lore)):
        lines.append(
            f"{name:<34}{run['seconds']:>9.1f}{run['cpu_seconds']:>8.1f}{run['chunks']:>8}{run['chunks_per_second']:>10.2f}"
            f"{run['files_per_second']:>9.2f}{run['megabytes_per_second']:>8.3f}"
        )
    lines += [
        f"throughput lore / baseline: {ratio['files_per_second']:.2f}x files/s, "
        f"{ratio['megabytes_per_second']:.2f}x MB/s, {ratio['cpu_seconds']:.2f}x less CPU time   (target >= 2x)",
        "",
        f"{'refresh':<44}{'seconds':>9}  report",
        f"{'nothing changed':<44}{refresh['unchanged_seconds']:>9.2f}  "
        f"{refresh['unchanged_fraction_of_full']:.2%} of full (target < 2%)",
    ]
    for label, key in (("touched (mtime only)", "touched"), ("edited (a paragraph appended)", "edited")):
        report = refresh[f"{key}_report"]
        assert isinstance(report, dict)
        counts = " ".join(f"{name}={report[name]}" for name in ("added", "updated", "deleted", "unchanged"))
        title = f"{label}, {refresh['files_touched']} files (1%)"
        lines.append(f"{title:<44}{refresh[key + '_seconds']:>9.2f}  {counts}")
    lines += ["", f"{'retrieval (document level)':<28}{'hit@1':>7}{'hit@5':>7}{'MRR@10':>8}"]
    for name, value in quality.items():
        lines.append(f"{name:<28}{value['hit1']:>7.3f}{value['hit5']:>7.3f}{value['mrr']:>8.3f}")
    lines += [
        "targets: lore hybrid hit@5 >= 0.95, hit@1 >= 0.75, above every baseline",
        "",
        f"permissions (hybrid, {perms['searches']} searches each): p50 {perms['p50_ms_off']} ms off, "
        f"{perms['p50_ms_on']} ms on ({perms['latency_ratio']:.2f}x; target <= 1.10x); "
        f"hit@5 {perms['hit5_off']:.3f} off, {perms['hit5_on']:.3f} on; identical rankings: {perms['identical_rankings']}",
    ]
    return "\n".join(lines)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
