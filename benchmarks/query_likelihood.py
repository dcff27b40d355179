"""Does the bundled SmolLM2 pick the answering sentence better than the embedding scorer?

Query likelihood (Sachan et al. 2022, "Improving Passage Retrieval with Zero-Shot Question
Generation"): the mean log-probability the model gives the question after reading
`Passage: <title > heading: sentence>` then `A question this passage answers:`. Here it
reorders the embedding scorer's best `--top` candidate sentences of the agent's retrieved
passages (`--level document`: each document's best sentence, so the model picks which
document leads); the first excerpt is cut around the sentence it puts first, the second one
(from another document) is the embedding path's, exactly as the agent cuts them. Compared in the
same run with the embedding path alone, per half, on the same retrieval:

    python benchmarks/query_likelihood.py --corpus sourcegraph --half tune
    python benchmarks/query_likelihood.py --corpus 18f --half report --top 8

It stays out of the answer path unless it wins on a report half (README, "Answers").
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from answer_quality import HALVES, SETS, _accepted, _fmt, _holds, _load, _question, _share  # noqa: E402

from bot.app import build_services  # noqa: E402
from bot.core.excerpt import candidate_sentences, excerpt_around, select_excerpts  # noqa: E402
from bot.model.weights import resolve_base_model  # noqa: E402
from bot.settings import LoreSettings, ModelSettings  # noqa: E402
from knowledge.config import SourceSettings  # noqa: E402
from knowledge.types import Passage  # noqa: E402


class QueryLikelihood:
    """Mean log P(question | passage prompt) under a causal LM, batched by length."""

    def __init__(self, folder: Path, batch_size: int = 8) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(folder)
        self.model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
        self.batch_size = batch_size

    @torch.inference_mode()
    def score(self, question: str, contexts: Sequence[str]) -> list[float]:
        target = self.tokenizer(" " + question.strip(), add_special_tokens=False)["input_ids"]
        prompts = [
            self.tokenizer(f"Passage: {context}\nA question this passage answers:", add_special_tokens=False)["input_ids"]
            for context in contexts
        ]
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
        scores = [0.0] * len(prompts)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        for start in range(0, len(order), self.batch_size):
            batch = order[start : start + self.batch_size]
            rows = [prompts[i] + target for i in batch]
            width = max(len(row) for row in rows)
            ids = torch.tensor([row + [pad] * (width - len(row)) for row in rows])
            mask = torch.tensor([[1] * len(row) + [0] * (width - len(row)) for row in rows])
            logits = self.model(input_ids=ids, attention_mask=mask).logits.float()
            logprobs = torch.log_softmax(logits[:, :-1], dim=-1)
            for row_index, i in enumerate(batch):
                first = len(prompts[i])
                positions = torch.arange(first - 1, first - 1 + len(target))
                picked = logprobs[row_index, positions, torch.tensor(target)]
                scores[i] = float(picked.mean())
        return scores


def _context(passage: Passage, sentence: str) -> str:
    label = " > ".join(part for part in (passage.title, passage.heading) if part)
    return f"{label}: {sentence}" if label else sentence


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", choices=sorted(SETS), default="sourcegraph")
    parser.add_argument("--half", choices=HALVES, default="tune")
    parser.add_argument("--home", type=Path, default=None)
    parser.add_argument("--top", type=int, default=8, help="Embedding candidates the model reorders.")
    parser.add_argument("--level", choices=("sentence", "document"), default="sentence",
                        help="Reorder sentences, or each document's best sentence (which document leads).")
    args = parser.parse_args()
    corpus, question_file = SETS[args.corpus]
    if not corpus.is_dir():
        print(f"SKIP: corpus {corpus} is absent")
        return 0
    home = args.home or Path(f"/tmp/lore-bench-{args.corpus}")
    services = build_services(LoreSettings(home=home, sources=[SourceSettings(name="handbook", path=corpus)]))
    try:
        services.knowledge.refresh(show_progress=True)
        scorer = QueryLikelihood(resolve_base_model(ModelSettings(), home))
        agent = services.agent
        rules = agent.excerpt_rules
        rows = []
        seconds = 0.0
        for number, item in enumerate(_load(question_file)):
            if item.half != args.half or not item.question.answerable:
                continue
            question = item.question
            passages = agent.retrieve(_question(item, number))
            numbered = list(enumerate(passages, start=1))
            by_embedding = select_excerpts(question.question, numbered, agent.scorer, rules)
            # Every sentence an excerpt may be cut around, ranked as the agent ranks them.
            candidates = [(n, p, s) for n, p in numbered for s in dict.fromkeys(candidate_sentences(p))]
            by_model = by_embedding
            if candidates:
                scores = agent.scorer.score(question.question, [s for _, _, s in candidates])
                ranked = sorted(
                    zip(candidates, scores, strict=True),
                    key=lambda item: item[1] - (rules.rank_weight + 0.001) * (item[0][0] - 1),
                    reverse=True,
                )
                if args.level == "document":
                    seen: set[str] = set()
                    ranked = [r for r in ranked if not (r[0][1].path in seen or seen.add(r[0][1].path))]
                ranked = ranked[: args.top]
                started = time.perf_counter()
                likelihood = scorer.score(question.question, [_context(p, s) for (_, p, s), _ in ranked])
                seconds += time.perf_counter() - started
                (number_, passage_, sentence_), _ = ranked[max(range(len(ranked)), key=likelihood.__getitem__)]
                first = excerpt_around(number_, passage_, sentence_, rules)
                second = [e for e in by_embedding if e.passage.path != passage_.path][:1]
                by_model = [first, *second]
            rows.append((question, by_embedding, by_model))
    finally:
        services.close()
    print(f"\n{args.corpus}, {args.half} half, {len(rows)} answerable questions, "
          f"top {args.top} {args.level} candidates reordered")
    for name, index in (("embedding scorer", 1), ("query likelihood first", 2)):
        shown = _share([_holds("\n".join(e.text for e in row[index]), row[0].must_contain) for row in rows])
        first = _share([bool(row[index]) and _holds(row[index][0].text, row[0].must_contain) for row in rows])
        cited = _share([any(_accepted(e.passage.path, row[0]) for e in row[index]) for row in rows])
        print(f"  {name:24} shown {_fmt(shown)}  first excerpt alone {_fmt(first)}  cited {_fmt(cited)}")
    print(f"  model scoring: {seconds / max(len(rows), 1):.2f} s per question")
    return 0


if __name__ == "__main__":
    sys.exit(main())
