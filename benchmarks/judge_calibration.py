"""Would calibrating the "not covered" judge per index, from the index alone, help?

The idea (issue #13): questions derived from the indexed documents' own structure
(`bot.customize.derivation`, no hand-picked questions) are covered by construction; the same
questions asked with their document taken out of the results stand for what the index does
not answer. The threshold that refuses at most `--refuse` of the covered ones is the index's
own `min_evidence_score`. This prints both distributions and that threshold, then the
real question sets' refusals (benchmarks/questions/, both halves) with the calibrated
threshold beside the shipped one, in the same run:

    python benchmarks/judge_calibration.py --corpus sourcegraph
    python benchmarks/judge_calibration.py --corpus 18f --questions 300
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from answer_quality import HALVES, SETS, _fmt, _question, _share, corpus_services  # noqa: E402

from bot.customize.derivation import derive_pairs  # noqa: E402

JUDGED = 5  # passages the judge reads (bot.core.judge.COVERAGE_PASSAGES)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", choices=sorted(SETS), default="sourcegraph")
    parser.add_argument("--home", type=Path, default=None)
    parser.add_argument("--questions", type=int, default=150, help="Derived questions, one per document.")
    parser.add_argument("--refuse", type=float, default=0.05, help="Share of covered questions refused.")
    args = parser.parse_args()
    loaded = corpus_services(args.corpus, args.home)
    if loaded is None:
        return 0
    services, asked = loaded
    try:
        agent = services.agent
        catalog = services.knowledge.catalog
        documents = sorted(catalog.files())
        random.Random(7).shuffle(documents)
        derived: list[tuple[str, str]] = []
        for source, path in documents:
            records = catalog.chunks(catalog.file_chunk_ids(source, path)).values()
            pairs = [(pair.question, path) for r in records for pair in derive_pairs(r.title, r.heading, r.text)]
            if pairs:
                derived.append(random.Random(path).choice(pairs))
            if len(derived) == args.questions:
                break
        covered, uncovered = [], []
        for question, path in derived:
            found = agent.retriever.search(question, k=4 * JUDGED, max_per_document=2)
            covered.append(agent.judge.best_sentence_similarity(question, found[:JUDGED]))
            others = [p for p in found if p.path != path]
            uncovered.append(agent.judge.best_sentence_similarity(question, others[:JUDGED]))
        ordered = sorted(covered)
        calibrated = ordered[int(args.refuse * len(ordered))]
        print(f"\n{args.corpus}: {len(derived)} derived questions")
        print(
            f"  best-sentence similarity, covered p05/p25/p50: "
            f"{' / '.join(_fmt(ordered[int(q * (len(ordered) - 1))]) for q in (0.05, 0.25, 0.5))}"
        )
        other = sorted(uncovered)
        print(
            f"  without their document p25/p50/p75:          "
            f"{' / '.join(_fmt(other[int(q * (len(other) - 1))]) for q in (0.25, 0.5, 0.75))}"
        )
        print(
            f"  calibrated min_evidence_score (refuses {args.refuse:.0%} of covered): {calibrated:.3f}; "
            f"it refuses {_share([u < calibrated for u in uncovered]) or 0:.2f} of those without their document"
        )

        shipped = agent.judge.settings.min_evidence_score
        found = [agent.retrieve(_question(item, n)) for n, item in enumerate(asked)]
        print(f"  real questions, refused     {'':14}" + "".join(f"{h + ' ans':>12}{h + ' unans':>12}" for h in HALVES))
        for label, threshold in ((f"shipped {shipped:.2f}", shipped), (f"calibrated {calibrated:.2f}", calibrated)):
            agent.judge.settings = agent.judge.settings.model_copy(update={"min_evidence_score": threshold})
            cells = []
            for half in HALVES:
                decided = [
                    (item.question.answerable, agent.judge.is_covered(item.question.question, passages))
                    for item, passages in zip(asked, found, strict=True)
                    if item.half == half
                ]
                cells.append(
                    f"{_fmt(_share([not c for a, c in decided if a])):>12}"
                    f"{_fmt(_share([not c for a, c in decided if not a])):>12}"
                )
            print(f"  {label:42}" + "".join(cells))
    finally:
        services.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
