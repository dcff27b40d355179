"""Does the bundled SmolLM2, untrained or customized on the company's documents, pick the
answering sentence better than the embedding scorer?

Query likelihood (Sachan et al. 2022, "Improving Passage Retrieval with Zero-Shot Question
Generation"): the mean log-probability the model gives the question after reading a passage.
Here the passage is `<title > heading>: <sentence>` in a user turn asking for the question it
answers, and the question is the assistant's reply, tokenized exactly as customization trains
a reply (bot/customize/tokenize.py), so the same LoRA recipe can teach the job.

It reorders the embedding scorer's best `--top` candidates among the agent's retrieved
passages (`--level sentence`: any sentence; `--level document`: each document's best sentence,
so the model picks which document leads). The first excerpt is cut around the sentence it puts
first, the second one (from another document) is the embedding path's, exactly as the agent
cuts them. Compared in the same run with the embedding path alone, per half:

    python benchmarks/query_likelihood.py --corpus sourcegraph --half tune
    python benchmarks/query_likelihood.py --corpus sourcegraph --train 25      # then measure
    python benchmarks/query_likelihood.py --corpus sourcegraph --half report --adapter NAME

`--train MINUTES` customizes the scorer: passage → question pairs derived from every indexed
document (bot/customize/derivation.py: headings, FAQ entries, definitions, table rows), split by
document, LoRA on the last 10 layers within the time budget (bot/customize/training.py), kept in
`<home>/scorers/`. It stays out of the answer path unless it wins on a report half (README,
"Answers").
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from answer_quality import HALVES, SETS, _accepted, _fmt, _holds, _question, _share, corpus_services  # noqa: E402

from bot.app import Services  # noqa: E402
from bot.core.excerpt import candidate_sentences, excerpt_around, select_excerpts  # noqa: E402
from bot.customize.dataset import _write  # noqa: E402
from bot.customize.derivation import derive_pairs  # noqa: E402
from bot.customize.examples import Example  # noqa: E402
from bot.customize.splitting import split_by_document  # noqa: E402
from bot.customize.tokenize import IGNORE, ExampleTokenizer  # noqa: E402
from bot.customize.training import TrainingSettings, train_adapter  # noqa: E402
from bot.model.adapters import AdapterRegistry  # noqa: E402
from bot.model.base import ChatMessage  # noqa: E402
from bot.model.weights import base_model_name, resolve_base_model  # noqa: E402
from bot.settings import ModelSettings  # noqa: E402
from knowledge.types import Passage  # noqa: E402

ASK = "Write the question an employee would ask that this passage answers."


def scoring_messages(context: str) -> tuple[ChatMessage, ...]:
    return (ChatMessage("user", f"Passage: {context}\n\n{ASK}"),)


class QueryLikelihood:
    """Mean log P(question | passage) under the chat model, optionally with a LoRA adapter."""

    def __init__(self, folder: Path, adapter: Path | None = None, batch_size: int = 8) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(folder)
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
        if adapter is not None:
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, adapter)
        self.model = model.eval()
        self.encoder = ExampleTokenizer(tokenizer)
        self.pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        self.batch_size = batch_size

    @torch.inference_mode()
    def score(self, question: str, contexts: Sequence[str]) -> list[float]:
        encoded = [self.encoder.encode(_example(context, question, "", "")) for context in contexts]
        order = sorted(range(len(encoded)), key=lambda i: len(encoded[i].input_ids))
        scores = [0.0] * len(encoded)
        for start in range(0, len(order), self.batch_size):
            batch = order[start : start + self.batch_size]
            width = max(len(encoded[i].input_ids) for i in batch)
            ids = torch.tensor(
                [list(encoded[i].input_ids) + [self.pad] * (width - len(encoded[i].input_ids)) for i in batch]
            )
            labels = torch.tensor(
                [list(encoded[i].labels) + [IGNORE] * (width - len(encoded[i].labels)) for i in batch]
            )
            mask = (
                torch.arange(width)[None, :] < torch.tensor([len(encoded[i].input_ids) for i in batch])[:, None]
            ).long()
            logits = self.model(input_ids=ids, attention_mask=mask).logits.float()
            logprobs = torch.log_softmax(logits[:, :-1], dim=-1)
            targets = labels[:, 1:]
            picked = logprobs.gather(-1, targets.clamp(min=0)[..., None])[..., 0]
            kept = targets != IGNORE
            means = (picked * kept).sum(-1) / kept.sum(-1)
            for row, i in enumerate(batch):
                scores[i] = float(means[row])
        return scores


def _example(context: str, question: str, document: str, kind: str) -> Example:
    return Example(
        messages=scoring_messages(context),
        target=question,
        question=question,
        kind=kind,
        origin="document",
        document=document,
        source=None,
        covered=True,
    )


def _context(passage: Passage, sentence: str) -> str:
    label = " > ".join(part for part in (passage.title, passage.heading) if part)
    return f"{label}: {sentence}" if label else sentence


def _train(services: Services, home: Path, minutes: float) -> str:
    """Derive passage → question pairs from every document, split by document, train."""
    catalog = services.knowledge.catalog
    examples: list[Example] = []
    for source, path in sorted(catalog.files()):
        for record in catalog.chunks(catalog.file_chunk_ids(source, path)).values():
            label = " > ".join(part for part in (record.title, record.heading) if part)
            for pair in derive_pairs(record.title, record.heading, record.text):
                context = f"{label}: {pair.answer}" if label else pair.answer
                examples.append(_example(context, pair.question, f"{source}:{path}", pair.kind))
    random.Random(7).shuffle(examples)
    split = split_by_document(examples, validation_share=0.05, test_share=0.05)
    card = _write(
        home / "scorer-datasets",
        {"train": split.train, "validation": split.validation, "test": split.test},
        {
            "by_kind": {},
            "by_origin": {"document": len(examples)},
            "by_folder": {},
            "not_covered": 0,
            "documents": {"used": len({e.document for e in examples})},
            "redactions": {},
            "gaps": [],
            "skipped": {},
            "options": {"task": "query likelihood"},
        },
        datetime.now(UTC),
    )
    print(f"scorer dataset {card.folder}: {card.splits}")
    settings = ModelSettings()
    result = train_adapter(
        card.folder,
        resolve_base_model(settings, home),
        base_model_name(settings),
        AdapterRegistry(home / "scorers"),
        home / "scorer-runs",
        TrainingSettings(
            top_layers=10, max_length=256, max_minutes=minutes, checkpoint_every=50, max_validation_examples=64
        ),
        show_progress=True,
    )
    print(
        f"trained {result.adapter}: {result.steps} steps in {result.seconds:.0f} s, {result.examples} examples, "
        f"validation loss {result.validation_loss}"
    )
    return result.adapter


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", choices=sorted(SETS), default="sourcegraph")
    parser.add_argument("--half", choices=HALVES, default="tune")
    parser.add_argument("--home", type=Path, default=None)
    parser.add_argument("--top", type=int, default=8, help="Embedding candidates the model reorders.")
    parser.add_argument(
        "--level",
        choices=("sentence", "document"),
        default="sentence",
        help="Reorder sentences, or each document's best sentence (which document leads).",
    )
    parser.add_argument("--train", type=float, default=None, metavar="MINUTES", help="Customize the scorer first.")
    parser.add_argument("--adapter", default=None, help="A scorer adapter in <home>/scorers/ to measure too.")
    args = parser.parse_args()
    loaded = corpus_services(args.corpus, args.home)
    if loaded is None:
        return 0
    services, asked = loaded
    home = services.settings.home
    try:
        adapter = _train(services, home, args.train) if args.train else args.adapter
        folder = resolve_base_model(ModelSettings(), home)
        scorers = {"base model": QueryLikelihood(folder)}
        if adapter is not None:
            scorers[f"customized ({adapter})"] = QueryLikelihood(
                folder, AdapterRegistry(home / "scorers").path(adapter)
            )
        agent = services.agent
        rules = agent.excerpt_rules
        rows: list[tuple[object, dict[str, list]]] = []
        seconds = dict.fromkeys(scorers, 0.0)
        for number, item in enumerate(asked):
            if item.half != args.half or not item.question.answerable:
                continue
            question = item.question
            passages = agent.retrieve(_question(item, number))
            numbered = list(enumerate(passages, start=1))
            by_embedding = select_excerpts(question.question, numbered, agent.scorer, rules)
            shown = {"embedding scorer": by_embedding}
            # Every sentence an excerpt may be cut around, ranked as the agent ranks them.
            candidates = [(n, p, s) for n, p in numbered for s in dict.fromkeys(candidate_sentences(p))]
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
                for name, scorer in scorers.items():
                    started = time.perf_counter()
                    likelihood = scorer.score(question.question, [_context(p, s) for (_, p, s), _ in ranked])
                    seconds[name] += time.perf_counter() - started
                    (chosen_number, chosen, sentence), _ = ranked[max(range(len(ranked)), key=likelihood.__getitem__)]
                    first = excerpt_around(chosen_number, chosen, sentence, rules)
                    second = [e for e in by_embedding if e.passage.path != chosen.path][:1]
                    shown[f"query likelihood, {name}"] = [first, *second]
            rows.append((question, shown))
    finally:
        services.close()
    print(
        f"\n{args.corpus}, {args.half} half, {len(rows)} answerable questions, "
        f"top {args.top} {args.level} candidates reordered"
    )
    for name in rows[0][1]:
        picked = [(q, shown.get(name, shown["embedding scorer"])) for q, shown in rows]
        holds = _share([_holds("\n".join(e.text for e in ex), q.must_contain) for q, ex in picked])
        first = _share([bool(ex) and _holds(ex[0].text, q.must_contain) for q, ex in picked])
        cited = _share([any(_accepted(e.passage.path, q) for e in ex) for q, ex in picked])
        cost = next((f", {s / len(rows):.2f} s per question" for n, s in seconds.items() if name.endswith(n)), "")
        print(f"  {name:48} shown {_fmt(holds)}  first excerpt alone {_fmt(first)}  cited {_fmt(cited)}{cost}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
