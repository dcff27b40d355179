"""Customization on the Sourcegraph handbook: the bundled SmolLM2-135M, base vs a LoRA adapter
trained by `bot.customize` on the handbook itself, on questions held out from training.

One run: index the handbook (reused when `--home` has it), build the dataset offline (derived
questions, split by document), train with a wall-clock budget (default 30 min), then ask the
same questions with the base model and with the adapter, same retrieval, same agent:

  * held-out: the dataset's test split (derived questions about documents no training example
    came from), `--test-questions` of them taken evenly through it;
  * handbook: the hand-written employee questions in benchmarks/questions/ (never seen in
    training; their documents may have been), `--handbook-questions` answerable ones spread over
    the file plus every unanswerable one, so abstention is measured on all of them.

Prints both tables, each in two views: what the asker is shown (answer accuracy, answer +
evidence, citation accuracy, abstention, wrong abstention, latency p50) and the model's own text
and citations, shown or not (the base model's text never passes the agent's grounding check, so
the first view compares the adapter with the quoted evidence, the second with the base model;
see bot/core/evaluation.py), with the share of answers whose text passed the check,
training time and steps, and writes the results as JSON and the `lore customize eval` chart
(loss curve, base vs adapter on the held-out split) beside the adapter.

    python benchmarks/customization.py                       # everything, ~1.5 h on 2 cores
    python benchmarks/customization.py --max-minutes 5 --test-questions 8 --handbook-questions 6
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.app import build_services
from bot.core.evaluation import EvalQuestion, EvalReport, EvalResult, load_questions
from bot.core.glossary import glossary_for
from bot.customize.chart import CHART_FILE, save_evaluation_chart
from bot.customize.dataset import DatasetOptions, build_dataset
from bot.customize.evaluate import compare, evaluation_record, test_questions
from bot.customize.promotion import store_evaluation
from bot.customize.training import TrainingSettings, train_adapter
from bot.model.adapters import AdapterRegistry
from bot.model.weights import base_model_name, resolve_base_model
from bot.settings import LoreSettings, ModelSettings
from knowledge.config import FolderSourceSettings

CORPUS = ROOT.parent / "shared" / "corpora" / "sourcegraph-handbook" / "content"
QUESTIONS = ROOT / "benchmarks" / "questions" / "sourcegraph_handbook.jsonl"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument("--home", type=Path, default=Path("/tmp/lore-bench-handbook"))
    parser.add_argument("--dataset", type=Path, default=None, help="Reuse this dataset folder.")
    parser.add_argument("--adapter", default=None, help="Reuse this trained adapter (skips training).")
    parser.add_argument("--max-minutes", type=float, default=30.0, help="Training time budget.")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--learning-rate", type=float, default=5e-4)
    parser.add_argument("--gradient-accumulation", type=int, default=1)
    parser.add_argument(
        "--distractor-share",
        type=float,
        default=0.05,
        help="Share of examples with only distractors and the 'not covered' reply (at 0.2 the "
        "adapter learned to refuse 58%% of answerable held-out questions).",
    )
    parser.add_argument("--checkpoint-every", type=int, default=40)
    parser.add_argument("--top-layers", type=int, default=None, help="LoRA in the last N layers only.")
    parser.add_argument(
        "--max-length",
        type=int,
        default=640,
        help="Train on the examples up to this many tokens (the agent's own prompts, the shorter ones: "
        "a step costs about its length, and 2 cores train ~50 tokens/s).",
    )
    parser.add_argument("--test-questions", type=int, default=24)
    parser.add_argument(
        "--handbook-questions", type=int, default=20, help="Answerable ones; all unanswerable are added."
    )
    parser.add_argument("--max-new-tokens", type=int, default=None)
    parser.add_argument("--json", type=Path, default=None, help="Also write the results here.")
    args = parser.parse_args()

    if not args.corpus.is_dir():
        print(f"SKIP: corpus {args.corpus} is absent")
        return 0
    model_settings = ModelSettings()
    if args.max_new_tokens is not None:
        model_settings = model_settings.model_copy(update={"max_new_tokens": args.max_new_tokens})
    settings = LoreSettings(
        home=args.home,
        sources=[FolderSourceSettings(name="handbook", path=args.corpus, permissions="public")],
        model=model_settings,
    )
    services = build_services(settings)
    results: dict[str, object] = {}
    try:
        started = time.perf_counter()
        report = services.knowledge.refresh(show_progress=True)
        print(
            f"index: {report.to_dict()['added']} added, {services.knowledge.status().chunks} chunks, "
            f"{time.perf_counter() - started:.0f} s",
            flush=True,
        )

        dataset = args.dataset or _dataset(services, settings, args.distractor_share)
        card = json.loads((dataset / "card.json").read_text(encoding="utf-8"))
        print(f"dataset {dataset}: splits {card['splits']}, kinds {card['by_kind']}", flush=True)

        registry = AdapterRegistry(settings.home / "adapters")
        adapter, training = args.adapter, {}
        if adapter is None:
            adapter, training = _train(settings, registry, dataset, args)
        held_out = _spread(test_questions(dataset), args.test_questions)
        handbook = _handbook_questions(args.handbook_questions)
        for name, questions in (("held-out (dataset test split)", held_out), ("handbook questions", handbook)):
            print(f"\n--- {name}: {len(questions)} questions, base then adapter {adapter} ---", flush=True)
            reports = _compare(services.agent, adapter, questions)
            _print_table(name, reports)
            results[name] = {side: report.to_dict() for side, report in reports.items()}
            if questions is held_out:  # what `lore customize eval` keeps, so promotion can use it
                store_evaluation(registry, adapter, evaluation_record(reports, dataset, len(questions)))
        results["training"] = training
        results["adapter"] = adapter
        chart = save_evaluation_chart(registry.info(adapter).metadata, registry.path(adapter) / CHART_FILE, adapter)
        print(f"\nchart: {chart}")
    finally:
        services.close()
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=str))
    return 0


def _dataset(services: object, settings: LoreSettings, distractor_share: float) -> Path:
    started = time.perf_counter()
    model = services.model  # type: ignore[attr-defined]
    card = build_dataset(
        services.knowledge,  # type: ignore[attr-defined]
        settings.home / "datasets",
        retrieval=settings.retrieval,
        persona=settings.agent.persona,
        glossary=glossary_for(settings),
        count_tokens=model.count_tokens,
        options=DatasetOptions(distractor_share=distractor_share),
    )
    print(f"dataset built in {time.perf_counter() - started:.0f} s", flush=True)
    return card.folder


def _train(
    settings: LoreSettings, registry: AdapterRegistry, dataset: Path, args: argparse.Namespace
) -> tuple[str, dict[str, object]]:
    # Validation is forward passes over ~800-token examples (~3 s each here): fewer and rarer
    # than the defaults, so the budget goes to training steps.
    training = TrainingSettings(
        epochs=args.epochs,
        learning_rate=args.learning_rate,
        max_minutes=args.max_minutes,
        gradient_accumulation=args.gradient_accumulation,
        max_length=args.max_length,
        checkpoint_every=args.checkpoint_every,
        max_validation_examples=16,
        top_layers=args.top_layers,
    )
    started = time.perf_counter()
    result = train_adapter(
        dataset,
        resolve_base_model(settings.model, settings.home),
        base_model_name(settings.model),
        registry,
        settings.home / "customize" / "runs",
        training,
        show_progress=True,
    )
    wall = time.perf_counter() - started
    summary = {
        "adapter": result.adapter,
        "steps": result.steps,
        "planned_steps": result.metadata["metrics"]["planned_steps"],
        "examples_seen": result.steps * training.gradient_accumulation * training.batch_size,
        "train_examples": result.examples,
        "train_loss": result.train_loss,
        "validation_loss": result.validation_loss,
        "seconds": round(wall, 1),
        "first_loss": result.metadata["loss_curve"][0][1] if result.metadata["loss_curve"] else None,
    }
    print(f"\ntraining: {summary}", flush=True)
    return result.adapter, summary


def _handbook_questions(answerable: int) -> list[EvalQuestion]:
    questions = load_questions(QUESTIONS)
    return _spread([q for q in questions if q.answerable], answerable) + [q for q in questions if not q.answerable]


def _spread(questions: list[EvalQuestion], count: int) -> list[EvalQuestion]:
    """`count` questions taken evenly through the list (a file's or split's neighbours tend to
    share a document)."""
    step = max(1, len(questions) // max(1, count))
    return questions[::step][:count]


def _compare(agent: object, adapter: str, questions: list[EvalQuestion]) -> dict[str, EvalReport]:
    def show(side: str, result: EvalResult) -> None:
        mark = "ok " if result.cited_right else ("abst" if not result.confident else "-- ")
        if not result.question.answerable:
            mark = "abst" if not result.confident else "ANSW"
        answer = " ".join(result.answer.split())[:90]
        print(f"  {side:7} {mark} {result.question.question[:50]!r} -> {answer!r}", flush=True)

    return compare(agent, adapter, questions, show)  # type: ignore[arg-type]


def _print_table(name: str, reports: dict[str, EvalReport]) -> None:
    print(f"\n=== {name} ===")
    print(f"{'metric':<36} {'base':>8} {'adapter':>8} {'change':>8}")
    lines = [
        ("shown: answer accuracy", "answer_accuracy"),
        ("shown: answer + evidence accuracy", "answer_evidence_accuracy"),
        ("shown: citation accuracy", "citation_accuracy"),
        ("abstention (unanswerable)", "abstention"),
        ("wrong abstention (answerable)", "wrong_abstention"),
        ("model's text: answer accuracy", "model_answer_accuracy"),
        ("model's text: citation accuracy", "model_citation_accuracy"),
        ("model's text shown (passed the check)", "generated_shown"),
        ("latency p50 (s)", "latency_p50"),
    ]
    base, tuned = reports["base"].to_dict(), reports["adapter"].to_dict()
    for label, key in lines:
        print(_row(label, base.get(key), tuned.get(key)))
    print(
        _row("time to first token p50 (s)", base["stages"]["first_token"]["p50"], tuned["stages"]["first_token"]["p50"])
    )


def _row(label: str, base: float | None, tuned: float | None) -> str:
    def text(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.2f}"

    if base is None or tuned is None:
        change = ""
    elif "(s)" in label:
        change = f"{tuned - base:+.2f} s"
    else:
        change = f"{(tuned - base) * 100:+.0f} pt"
    return f"{label:<36} {text(base):>8} {text(tuned):>8} {change:>8}"


if __name__ == "__main__":
    sys.exit(main())
