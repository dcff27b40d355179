"""`lore customize eval`: base model and adapter on the held-out test split, with the same
retrieval and agent, measured by `bot.core.evaluation` (the `lore eval` yardstick)."""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bot.core.agent import Agent
from bot.core.evaluation import (
    EvalQuestion,
    EvalReport,
    EvalResult,
    run_questions,
    summarize,
)
from bot.customize.dataset import DatasetCard, DatasetError, load_examples
from bot.model.writing import MeasuredWriting

HEADLINE = ("answer_accuracy", "citation_accuracy", "abstention", "latency_p50")
# The model's own text, shown or not: what the adapter changes before the agent's check.
MODEL_VIEW = ("model_answer_accuracy", "model_citation_accuracy", "generated_shown")


def test_questions(dataset: Path) -> list[EvalQuestion]:
    """The test split as `lore eval` questions: each answerable question once, with the
    document that answers it and the terms a right answer contains. (Examples whose prompt
    held only distractors are answerable at answer time, when retrieval finds the document.)"""
    questions: dict[str, EvalQuestion] = {}
    for example in load_examples(dataset, "test"):
        source = example.source or _path(example.document)
        if source is not None and example.question not in questions:
            questions[example.question] = EvalQuestion(example.question, source, (), example.must_contain)
    if not questions:
        raise DatasetError(f"The test split of {dataset} is empty: build a dataset from more documents.")
    return list(questions.values())


def compare(
    agent: Agent,
    adapter: str,
    questions: Sequence[EvalQuestion],
    on_result: Callable[[str, EvalResult], None] | None = None,
) -> dict[str, EvalReport]:
    """Ask every question with the base model, then with `adapter`, each writing every answer
    (whatever `agent.generate` says: writing is what is measured); the agent's model is set
    back to what it answered with before."""
    model = agent.model
    before = model.adapter
    writing = copy.copy(agent)
    writing.writes = None
    reports: dict[str, EvalReport] = {}
    try:
        for side, name in (("base", None), ("adapter", adapter)):
            model.use_adapter(name)
            callback = (lambda result, side=side: on_result(side, result)) if on_result else None
            reports[side] = summarize(run_questions(writing.answer, questions, callback))
    finally:
        model.use_adapter(before)
    return reports


def record_writing(
    measured: MeasuredWriting, model: str, adapter: str, reports: dict[str, EvalReport], questions: int
) -> None:
    """Keep how often each side's text passed the grounding check: it decides whether the
    model writes answers (`agent.generate = "auto"`)."""
    for side, name in (("base", None), ("adapter", adapter)):
        shown = reports[side].generated_shown
        if shown is not None:
            measured.record(model, name, shown, questions)


def evaluation_record(reports: dict[str, EvalReport], dataset: Path, questions: int) -> dict[str, Any]:
    """What `--json` prints and lore.json keeps: the headline metrics of both sides."""
    card = DatasetCard.read(dataset)
    record: dict[str, Any] = {side: headline(report) for side, report in reports.items()}
    record.update({"dataset": card.hash, "questions": questions, "evaluated": datetime.now(UTC).isoformat()})
    return record


def headline(report: EvalReport) -> dict[str, float | None]:
    """The headline metrics (answer_accuracy, citation_accuracy, abstention, latency_p50) and
    the model-view ones of one report."""
    data = report.to_dict()
    return {key: data[key] for key in (*HEADLINE, *MODEL_VIEW)}


def _path(document: str) -> str | None:
    source, _, path = document.partition(":")
    return path if source not in {"curated", "feedback"} and path else None
