"""What a person is shown, on question sets written the way employees ask, per corpus and half.

Two corpora (../shared/corpora/): the Sourcegraph handbook and the 18F handbook, each with a
question file in benchmarks/questions/ whose lines carry `"half": "tune"` or `"report"`.
Every rule of the answer path (retrieval depth, excerpt cut, the "not covered" judge) was
chosen with `--sweep` on the Sourcegraph tuning half only; the report halves and the 18F
corpus never took part.

    python benchmarks/answer_quality.py --corpus sourcegraph          # index (once) and ask
    python benchmarks/answer_quality.py --corpus 18f
    python benchmarks/answer_quality.py --corpus sourcegraph --sweep  # the rule grid, both halves
    python benchmarks/answer_quality.py --corpus 18f --generate 10    # also time the model writing

In one run, beside the shipped answer path (evidence first: labelled excerpts, no generation
for a model whose text is not trusted), the baseline of the same retrieval results: the
pipeline before issue #13 (at most two chunks per document in five passages, one to three
single quoted sentences). `--generate N` also has the model write N answers (as every
answer did before) to time it. `--details FILE` writes one JSON line per question (`lore eval
--details` format). The index lives in `--home` (default /tmp/lore-bench-<corpus>).
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.app import Services, build_services
from bot.core.evaluation import (
    EvalQuestion,
    EvalResult,
    details,
    load_questions,
    percentile,
    result_for,
    same_path,
    summarize,
)
from bot.core.evidence import select_evidence
from bot.core.excerpt import ExcerptRules, select_excerpts
from bot.settings import AgentSettings, LoreSettings
from bot.types import Asker, Question
from knowledge.config import FolderSourceSettings, RetrievalSettings
from knowledge.types import Passage

CORPORA = ROOT.parent / "shared" / "corpora"
QUESTIONS = ROOT / "benchmarks" / "questions"
SETS = {
    "sourcegraph": (CORPORA / "sourcegraph-handbook" / "content", QUESTIONS / "sourcegraph_employees.jsonl"),
    "18f": (CORPORA / "18f-handbook" / "pages", QUESTIONS / "18f_handbook.jsonl"),
}
HALVES = ("tune", "report")


@dataclass(frozen=True)
class Asked:
    question: EvalQuestion
    half: str


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", choices=sorted(SETS), default="sourcegraph")
    parser.add_argument("--home", type=Path, default=None)
    parser.add_argument("--sweep", action="store_true", help="Print the rule grid on both halves and stop.")
    parser.add_argument(
        "--generate",
        type=int,
        default=0,
        metavar="N",
        help="Also have the model write N answers (spread over the set) and time them.",
    )
    parser.add_argument("--details", type=Path, default=None, help="One JSON line per question.")
    parser.add_argument("--json", type=Path, default=None, help="Also write the figures here.")
    args = parser.parse_args()

    loaded = corpus_services(args.corpus, args.home)
    if loaded is None:
        return 0
    services, asked = loaded
    try:
        if args.sweep:
            _sweep(services, asked)
            return 0
        figures = _run(services, asked, args.details)
        if args.generate:
            figures["generate"] = _time_generation(services, asked, args.generate)
    finally:
        services.close()
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))
    return 0


def corpus_services(corpus: str, home: Path | None) -> tuple[Services, list[Asked]] | None:
    """The bot over `corpus`'s index in `home` (default /tmp/lore-bench-<corpus>), brought up
    to date (built on the first run), and its question set; None when the corpus is absent."""
    folder, question_file = SETS[corpus]
    if not folder.is_dir():
        print(f"SKIP: corpus {folder} is absent")
        return None
    home = home or Path(f"/tmp/lore-bench-{corpus}")
    services = build_services(
        LoreSettings(home=home, sources=[FolderSourceSettings(name="handbook", path=folder, permissions="public")])
    )
    try:
        started = time.perf_counter()
        report = services.knowledge.refresh(show_progress=True)
    except BaseException:
        services.close()
        raise
    print(
        f"index: {report.added} added, {services.knowledge.status().chunks} chunks, "
        f"{time.perf_counter() - started:.0f} s"
    )
    return services, _load(question_file)


def _load(path: Path) -> list[Asked]:
    halves = [json.loads(line).get("half", "tune") for line in path.read_text().splitlines() if line.strip()]
    return [Asked(question, half) for question, half in zip(load_questions(path), halves, strict=True)]


def _question(asked: Asked, number: int) -> Question:
    """A thread of its own, new in every run: the home's answer log keeps earlier runs' turns,
    and a question asked in their thread would be read as a follow-up to them."""
    return Question(asked.question.question, Asker("bench"), "bench", f"bench-{number}-{uuid.uuid4().hex}")


# -- the shipped answer path beside the baseline --------------------------------------------


def _run(services: Services, asked: list[Asked], details_file: Path | None) -> dict[str, Any]:
    agent = services.agent
    results: list[EvalResult] = []
    baseline: list[dict[str, bool]] = []
    for number, item in enumerate(asked):
        answer = agent.answer(_question(item, number), ())
        results.append(result_for(item.question, answer))
        baseline.append(_baseline(services, item.question))
    if details_file is not None:
        details_file.write_text("".join(json.dumps(details(r), ensure_ascii=False) + "\n" for r in results))
    figures: dict[str, Any] = {}
    print(f"\n{'':34}" + "".join(f"{half:>22}" for half in HALVES))
    print(f"{'':34}" + "".join(f"{'shipped':>11}{'before #13':>11}" for _ in HALVES))
    rows: dict[str, list[str]] = {}
    for half in HALVES:
        picked = [n for n, item in enumerate(asked) if item.half == half]
        mine = summarize([results[n] for n in picked])
        before = _baseline_summary([asked[n].question for n in picked], [baseline[n] for n in picked])
        firsts = [results[n].timings.get("first", results[n].timings["total"]) for n in picked]
        figures[half] = {
            **mine.to_dict(),
            "first_p50": percentile(firsts, 50),
            "first_p95": percentile(firsts, 95),
            "before": before,
        }
        for name, value, old in (
            ("shown answer holds the facts", mine.answer_evidence_accuracy, before["shown"]),
            ("facts in the retrieved passages", mine.facts_retrieved, before["facts_retrieved"]),
            ("citation accuracy", mine.citation_accuracy, before["cited"]),
            ("document hit@5", mine.hit_at_5, before["hit_at_5"]),
            ("answerable refused", mine.wrong_abstention, before["wrong_abstention"]),
            ("unanswerable refused", mine.abstention, before["abstention"]),
            ("answers hedged", mine.hedged, None),
            ("first answer p50 s", figures[half]["first_p50"], None),
            ("first answer p95 s", figures[half]["first_p95"], None),
        ):
            rows.setdefault(name, []).append(f"{_fmt(value):>11}{_fmt(old):>11}")
    for name, cells in rows.items():
        print(f"{name:34}" + "".join(cells))
    counts = {half: sum(item.half == half for item in asked) for half in HALVES}
    print(f"questions per half: {counts}")
    return figures


def _baseline(services: Services, question: EvalQuestion) -> dict[str, bool]:
    """The answer path before #13 on the same index: five passages, at most two per document,
    the same judge, one to three single sentences quoted."""
    agent = services.agent
    passages = agent.retriever.search(question.question, k=5, max_per_document=2)
    covered = agent.judge.is_covered(question.question, passages)
    quotes = select_evidence(question.question, list(enumerate(passages, start=1)), scorer=agent.scorer)
    shown = "\n".join(quote.sentence for quote in quotes)
    return {
        "covered": covered,
        "shown": covered and _holds(shown, question.must_contain),
        "cited": covered and any(_accepted(q.passage.path, question) for q in quotes),
        "facts_retrieved": _holds("\n".join(p.text for p in passages), question.must_contain),
        "hit_at_5": any(_accepted(p.path, question) for p in passages),
    }


def _baseline_summary(questions: list[EvalQuestion], rows: list[dict[str, bool]]) -> dict[str, float | None]:
    answerable = [row for q, row in zip(questions, rows, strict=True) if q.answerable]
    unanswerable = [row for q, row in zip(questions, rows, strict=True) if not q.answerable]
    return {
        "shown": _share([r["shown"] for r in answerable]),
        "cited": _share([r["cited"] for r in answerable]),
        "facts_retrieved": _share([r["facts_retrieved"] for r in answerable]),
        "hit_at_5": _share([r["hit_at_5"] for r in answerable]),
        "wrong_abstention": _share([not r["covered"] for r in answerable]),
        "abstention": _share([not r["covered"] for r in unanswerable]),
    }


def _time_generation(services: Services, asked: list[Asked], count: int) -> dict[str, Any]:
    """The model writing, as every answer waited for before: seconds per answer."""
    agent = services.agent
    agent.writes = None
    step = max(1, len(asked) // count)
    totals, shown = [], []
    for number, item in list(enumerate(asked))[::step][:count]:
        answer = agent.answer(_question(item, 10_000 + number), ())
        totals.append(answer.timings["total"])
        shown.append(bool(answer.generated) and answer.text == answer.generated)
    figures = {
        "questions": len(totals),
        "total_p50": percentile(totals, 50),
        "total_p95": percentile(totals, 95),
        "generated_shown": _share(shown),
    }
    print(
        f"\nthe model writing ({len(totals)} answers): total p50 {_fmt(figures['total_p50'])} s, "
        f"p95 {_fmt(figures['total_p95'])} s; its text passed the check in {_fmt(figures['generated_shown'])}"
    )
    return figures


# -- the rule grid ----------------------------------------------------------------------------

RETRIEVAL = ((2, 5), (1, 5), (2, 10))  # (max_per_document, k)
EXCERPTS = [
    ExcerptRules(before=0, after=0, limit=3, keep_ratio=0.85, max_chars=400),  # ~ the quotes of before
    *(
        ExcerptRules(before=10, after=10, limit=limit, keep_ratio=keep, max_chars=chars, rank_weight=weight)
        for limit, keep, chars, weight in itertools.product((1, 2), (0.0, 0.8), (400, 600, 800), (0.0, 0.03, 0.06))
        if not (limit == 1 and keep == 0.8)
    ),
]
THRESHOLDS = (0.30, 0.34, 0.38, 0.42, 0.46, 0.50)
RARE_WORD_VERDICTS = ("not covered", "hedged", "covered")


def _sweep(services: Services, asked: list[Asked]) -> None:
    """Every combination on both halves; choose on the tuning half only."""
    agent = services.agent
    for per_document, k in RETRIEVAL:
        agent.retrieval = RetrievalSettings(k=k, max_per_document=per_document)
        found = [agent.retrieve(_question(item, n)) for n, item in enumerate(asked)]
        print(f"\n== retrieval: k={k}, at most {per_document} per document ==")
        for half in HALVES:
            rows = [
                (item.question, passages)
                for item, passages in zip(asked, found, strict=True)
                if item.half == half and item.question.answerable
            ]
            hit = _share([any(_accepted(p.path, q) for p in ps) for q, ps in rows])
            facts = _share([_holds("\n".join(p.text for p in ps), q.must_contain) for q, ps in rows])
            print(f"  {half}: document hit {_fmt(hit)}, facts in passages {_fmt(facts)}")
        print(
            f"  {'excerpts (before/after, limit, keep, chars, rank weight)':58} "
            + "".join(f"{half + ' shown':>13}{half + ' cited':>13}" for half in HALVES)
        )
        for rules in EXCERPTS:
            cells = []
            for half in HALVES:
                rows = [
                    (item.question, passages)
                    for item, passages in zip(asked, found, strict=True)
                    if item.half == half and item.question.answerable
                ]
                picked = [select_excerpts(q.question, list(enumerate(ps, 1)), agent.scorer, rules) for q, ps in rows]
                shown = _share(
                    [
                        _holds("\n".join(e.text for e in ex), q.must_contain)
                        for (q, _), ex in zip(rows, picked, strict=True)
                    ]
                )
                cited = _share(
                    [any(_accepted(e.passage.path, q) for e in ex) for (q, _), ex in zip(rows, picked, strict=True)]
                )
                cells.append(f"{_fmt(shown):>13}{_fmt(cited):>13}")
            label = f"{rules.before}/{rules.after}, {rules.limit}, {rules.keep_ratio}, {rules.max_chars}, {rules.rank_weight}"
            print(f"  {label:58} " + "".join(cells))
        _sweep_judge(services, asked, found)


def _sweep_judge(services: Services, asked: list[Asked], found: list[list[Passage]]) -> None:
    agent = services.agent
    original = agent.judge.settings
    print(
        f"  {'judge (min score, rare-word verdict)':58} "
        + "".join(f"{half + ' ans ref':>13}{half + ' unans ref':>13}" for half in HALVES)
    )
    try:
        for threshold, verdict in itertools.product(THRESHOLDS, RARE_WORD_VERDICTS):
            agent.judge.settings = replace_settings(original, min_evidence_score=threshold, rare_word_verdict=verdict)
            cells = []
            for half in HALVES:
                decided = [
                    (item.question, agent.judge.is_covered(item.question.question, passages))
                    for item, passages in zip(asked, found, strict=True)
                    if item.half == half
                ]
                answerable = _share([not covered for q, covered in decided if q.answerable])
                unanswerable = _share([not covered for q, covered in decided if not q.answerable])
                cells.append(f"{_fmt(answerable):>13}{_fmt(unanswerable):>13}")
            print(f"  {f'{threshold}, {verdict}':58} " + "".join(cells))
    finally:
        agent.judge.settings = original


def replace_settings(settings: AgentSettings, **changes: Any) -> AgentSettings:
    return settings.model_copy(update=changes)


# -- helpers ------------------------------------------------------------------------------------


def _accepted(path: str, question: EvalQuestion) -> bool:
    return any(same_path(path, source) for source in question.accepted_sources)


def _holds(text: str, needles: tuple[str, ...]) -> bool:
    lowered = " ".join(text.lower().split())
    return bool(needles) and all(" ".join(needle.lower().split()) in lowered for needle in needles)


def _share(flags: list[bool]) -> float | None:
    return sum(flags) / len(flags) if flags else None


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


if __name__ == "__main__":
    sys.exit(main())
