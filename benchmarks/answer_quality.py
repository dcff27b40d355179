"""Answer quality of the core agent on the Sourcegraph handbook, with the bundled base model.

Reports answer accuracy, answer + evidence accuracy, citation accuracy, abstention on
unanswerable questions, wrongly abstained answerable questions, retrieval hit@k/MRR, latency
p50/p95 split into retrieval / prompt / generation, time to first token and tokens/s. In the
same run it compares the two evidence-sentence scorers (by meaning vs by shared words) on the
same answers, and sweeps the evidence-strength threshold (`agent.min_evidence_score`) over the
retrieval results.

    python benchmarks/answer_quality.py                 # everything (indexing ~9+ min first)
    python benchmarks/answer_quality.py --files 60 --limit 30   # a quick look on a subset

The index and the cached model live in `--home` (default /tmp/lore-bench-handbook), so later
runs reuse them. With `--files N` only N handbook files are indexed (the questions' sources
plus others, chosen with a fixed seed) and only questions whose source is among them, or
unanswerable ones, are asked. Skips cleanly when the corpus is absent.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.app import build_services
from bot.core.evaluation import (
    EvalQuestion,
    EvalResult,
    load_questions,
    result_for,
    summarize,
)
from bot.core.evidence import OverlapScorer, select_evidence
from bot.core.types import Asker, Question
from bot.settings import AgentSettings, LoreSettings, ModelSettings
from knowledge.config import SourceSettings

CORPUS = ROOT.parent / "shared" / "corpora" / "sourcegraph-handbook" / "content"
QUESTIONS = ROOT / "benchmarks" / "questions" / "sourcegraph_handbook.jsonl"
THRESHOLDS = (0.40, 0.44, 0.48, 0.52, 0.56)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument("--questions", type=Path, default=QUESTIONS)
    parser.add_argument("--home", type=Path, default=Path("/tmp/lore-bench-handbook"))
    parser.add_argument("--files", type=int, default=None, help="Index only this many files (a subset).")
    parser.add_argument("--limit", type=int, default=None, help="Ask only N questions, spread over the file.")
    parser.add_argument("--min-evidence-score", type=float, default=None)
    parser.add_argument("--max-new-tokens", type=int, default=None, help="Default: the model setting (200).")
    parser.add_argument("--sweep-only", action="store_true", help="Only retrieve and sweep thresholds.")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op threads (1 is faster on a busy shared machine).")
    parser.add_argument("--json", type=Path, default=None, help="Also write the results here.")
    args = parser.parse_args()

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if not args.corpus.is_dir():
        print(f"SKIP: corpus {args.corpus} is absent")
        return 0
    questions = load_questions(args.questions)
    corpus = args.corpus
    if args.files:
        corpus, questions = _subset(args.corpus, questions, args.files, args.home / "subset")
    if args.limit and args.limit < len(questions):
        # Spread over the file, so answerable and unanswerable questions are both in.
        step = len(questions) / args.limit
        questions = [questions[int(n * step)] for n in range(args.limit)]

    agent_settings = AgentSettings()
    if args.min_evidence_score is not None:
        agent_settings = agent_settings.model_copy(update={"min_evidence_score": args.min_evidence_score})
    model_settings = ModelSettings()
    if args.max_new_tokens is not None:
        model_settings = model_settings.model_copy(update={"max_new_tokens": args.max_new_tokens})
    settings = LoreSettings(
        home=args.home,
        sources=[SourceSettings(name="handbook", path=corpus)],
        agent=agent_settings,
        model=model_settings,
    )
    services = build_services(settings)
    try:
        started = time.perf_counter()
        report = services.knowledge.refresh(show_progress=True)
        print(f"index: {report.to_dict()['added']} added, {services.knowledge.status().chunks} chunks, "
              f"{time.perf_counter() - started:.0f} s")
        sweep = _sweep(services, questions)
        _print_sweep(sweep, questions)
        if args.sweep_only:
            return 0
        results, overlap_hits = _ask(services, questions)
    finally:
        services.close()

    summary = summarize(results)
    _print_summary(summary, results, overlap_hits, settings)
    if args.json:
        args.json.write_text(json.dumps({
            "summary": summary.to_dict(),
            "sweep": sweep,
            "questions": [
                {"question": r.question.question, "source": r.question.source, "retrieved": r.retrieved[:5],
                 "cited": r.cited, "answer": r.answer, "evidence": r.evidence, "confident": r.confident,
                 "timings": r.timings}
                for r in results
            ],
        }, indent=1))
    return 0


def _subset(corpus: Path, questions: list[EvalQuestion], files: int, folder: Path) -> tuple[Path, list[EvalQuestion]]:
    """Copy the questions' sources plus seeded-random other files (up to `files`) to `folder`."""
    everything = sorted(str(p.relative_to(corpus)) for p in corpus.rglob("*.md"))
    wanted: list[str] = []
    for question in questions:
        for path in question.accepted_sources[:1]:
            if path in everything and path not in wanted:
                wanted.append(path)
    wanted = wanted[:files]
    others = [p for p in everything if p not in wanted]
    random.Random(7).shuffle(others)
    chosen = set(wanted + others[: max(0, files - len(wanted))])
    if folder.exists():
        shutil.rmtree(folder)
    for path in chosen:
        target = folder / path
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(corpus / path, target)
    kept = [q for q in questions if not q.answerable or q.source in chosen]
    print(f"subset: {len(chosen)} files, {len(kept)} questions")
    return folder, kept


def _sweep(services: object, questions: list[EvalQuestion]) -> dict[str, object]:
    """Abstention and wrong abstention per threshold, from retrieval alone; the threshold is
    chosen on the even-numbered questions (tuning half) and reported on all."""
    agent = services.agent  # type: ignore[attr-defined]
    rows = []
    for number, question in enumerate(questions):
        asked = Question(question.question, Asker("bench"), "bench", f"sweep-{number}")
        rows.append((number, question, agent.retrieve(asked)))
    table: dict[str, dict[str, float]] = {}
    original = agent.settings
    try:
        for threshold in THRESHOLDS:
            agent.settings = original.model_copy(update={"min_evidence_score": threshold})
            decisions = [(n, q, agent.is_covered(q.question, found)) for n, q, found in rows]
            table[str(threshold)] = {
                part: _abstention_pair([(q, covered) for n, q, covered in decisions if keep(n)])
                for part, keep in (("tune", lambda n: n % 2 == 0), ("all", lambda n: True))
            }
    finally:
        agent.settings = original
    return table


def _abstention_pair(decisions: list[tuple[EvalQuestion, bool]]) -> dict[str, float]:
    unanswerable = [covered for q, covered in decisions if not q.answerable]
    answerable = [covered for q, covered in decisions if q.answerable]
    return {
        "abstention": sum(not c for c in unanswerable) / len(unanswerable) if unanswerable else float("nan"),
        "wrong_abstention": sum(not c for c in answerable) / len(answerable) if answerable else float("nan"),
    }


def _print_sweep(sweep: dict[str, object], questions: list[EvalQuestion]) -> None:
    print("\nevidence-strength threshold sweep (retrieval only; tune = even-numbered questions)")
    print(f"{'threshold':>10} {'tune abst':>10} {'tune wrong':>11} {'all abst':>9} {'all wrong':>10}")
    for threshold, parts in sweep.items():  # type: ignore[union-attr]
        tune, every = parts["tune"], parts["all"]
        print(f"{threshold:>10} {tune['abstention']:>10.2f} {tune['wrong_abstention']:>11.2f} "
              f"{every['abstention']:>9.2f} {every['wrong_abstention']:>10.2f}")


def _ask(services: object, questions: list[EvalQuestion]) -> tuple[list[EvalResult], list[bool]]:
    """Ask every question; also score the evidence the word-overlap scorer would have picked."""
    agent = services.agent  # type: ignore[attr-defined]
    results: list[EvalResult] = []
    overlap_hits: list[bool] = []
    for number, question in enumerate(questions, start=1):
        answer = agent.answer(Question(question.question, Asker("bench"), "bench", f"q-{number}"))
        result = result_for(question, answer)
        results.append(result)
        if question.answerable and question.must_contain and answer.confident:
            cited = {c.number for c in answer.citations}
            numbered = [(n, p) for n, p in enumerate(answer.passages, start=1) if n in cited]
            quotes = select_evidence(question.question, numbered, scorer=OverlapScorer())
            text = "\n".join([answer.text, *(q.sentence for q in quotes)]).lower()
            overlap_hits.append(all(s.lower() in text for s in question.must_contain))
        elif question.answerable and question.must_contain:
            overlap_hits.append(False)
        mark = "ok " if result.cited_right else ("abst" if not answer.confident else "-- ")
        if not question.answerable:
            mark = "abst" if not answer.confident else "ANSW"
        timings = answer.timings
        print(f"[{number:3}/{len(questions)}] {mark} total {timings.get('total', 0):5.1f}s "
              f"first token {timings.get('first_token', 0):5.1f}s "
              f"generation {timings.get('generation', 0):5.1f}s/{answer.generated_tokens} tokens "
              f"{question.question[:50]!r} -> {[c.source for c in answer.citations][:2]}", flush=True)
    return results, overlap_hits


def _print_summary(summary: object, results: list[EvalResult], overlap_hits: list[bool], settings: LoreSettings) -> None:
    s = summary
    print("\n=== answer quality (bundled base model) ===")

    def show(name: str, value: float | None, target: str = "") -> None:
        text = "n/a" if value is None else f"{value:.2f}"
        print(f"{name:<34} {text:>6}  {target}")

    print(f"questions: {s.count} ({s.answerable} answerable, {s.unanswerable} unanswerable); "
          f"min_evidence_score={settings.agent.min_evidence_score}")
    show("retrieval hit@1", s.hit_at_1)
    show("retrieval hit@5", s.hit_at_5)
    show("retrieval MRR", s.mrr)
    show("answer accuracy", s.answer_accuracy)
    show("answer + evidence accuracy", s.answer_evidence_accuracy)
    show("  same, word-overlap evidence", sum(overlap_hits) / len(overlap_hits) if overlap_hits else None,
         "(baseline scorer, same answers)")
    show("citation accuracy", s.citation_accuracy, "target >= 0.80")
    show("abstention (unanswerable)", s.abstention, "target >= 0.80")
    show("wrong abstention (answerable)", s.wrong_abstention, "target <= 0.10")
    print(f"{'latency p50 / p95':<34} {s.latency_p50:.2f} s / {s.latency_p95:.2f} s")
    for stage, values in s.stages.items():
        if values["p50"] is not None:
            target = "target < 3 s" if stage == "first_token" else ""
            print(f"{'  ' + stage + ' p50 / p95':<34} {values['p50']:.2f} s / {values['p95']:.2f} s  {target}")
    print(f"{'tokens/s (generation)':<34} {s.tokens_per_second or 0:.1f}")
    grounded = [r for r in results if r.confident and r.evidence and not r.answer.startswith('"')]
    confident = [r for r in results if r.confident]
    if confident:
        print(f"{'generated text kept (passed check)':<34} {len(grounded) / len(confident):.2f}")


if __name__ == "__main__":
    sys.exit(main())
