"""The yardstick: run the agent over a question file and measure retrieval, answers, citations,
abstention and latency. `lore eval` prints it; customization compares base and adapter with it.

Question file: JSON lines `{"question": .., "source": <path or null>, "also_ok": [..],
"must_contain": [..]}`. `source` null means the documents do not answer it (the agent should
abstain). Paths match when equal or when one ends with the other at a `/` boundary, so a file
may name paths relative to the corpus root or to the source root.

Two views of the answers: the agent's (what the asker is shown: the model's text when it passes
the grounding check, else the quoted evidence) and the model's own (its text and its [n]
citations, shown or not). With the bundled base model the two differ completely, since its text
never passes the check; customization changes the model, so it is measured in both."""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bot.core.citations import cited_numbers
from bot.types import Answer, Asker, Question, Turn
from knowledge.errors import LoreError

STAGES = ("retrieval", "first", "prompt", "generation", "first_token", "total")


class QuestionFileError(LoreError):
    """A question file is missing or has a malformed line."""


@dataclass(frozen=True)
class EvalQuestion:
    question: str
    source: str | None  # None: not answerable from the documents
    also_ok: tuple[str, ...] = ()
    must_contain: tuple[str, ...] = ()

    @property
    def answerable(self) -> bool:
        return self.source is not None

    @property
    def accepted_sources(self) -> tuple[str, ...]:
        return ((self.source,) if self.source else ()) + self.also_ok


@dataclass(frozen=True)
class EvalResult:
    """What the agent did with one question."""

    question: EvalQuestion
    retrieved: tuple[str, ...]  # paths, best first
    cited: tuple[str, ...]
    answer: str
    evidence: tuple[str, ...]
    confident: bool
    timings: dict[str, float]
    generated_tokens: int
    generated: str = ""  # the model's own text, shown or not ("" when it was not asked)
    generated_cited: tuple[str, ...] = ()  # the paths its [n] markers name
    # Whether the expected facts are somewhere in the retrieved passages (None: no facts given).
    facts_retrieved: bool | None = None
    hedged: bool = False
    evidence_score: float | None = None

    @property
    def rank(self) -> int | None:
        """1-based rank of the first accepted source among the retrieved paths."""
        for position, path in enumerate(self.retrieved, start=1):
            if any(same_path(path, source) for source in self.question.accepted_sources):
                return position
        return None

    @property
    def cited_right(self) -> bool:
        return any(same_path(path, source) for path in self.cited for source in self.question.accepted_sources)

    @property
    def answer_correct(self) -> bool:
        return self.confident and _contains_all(self.answer, self.question.must_contain)

    @property
    def answer_or_evidence_correct(self) -> bool:
        return self.confident and _contains_all("\n".join((self.answer, *self.evidence)), self.question.must_contain)

    @property
    def generated_shown(self) -> bool:
        """Whether the asker was shown the model's own text (it passed the grounding check)."""
        return self.confident and bool(self.generated) and self.answer == self.generated

    @property
    def model_answer_correct(self) -> bool:
        return self.confident and _contains_all(self.generated, self.question.must_contain)

    @property
    def model_cited_right(self) -> bool:
        return self.confident and any(
            same_path(path, source) for path in self.generated_cited for source in self.question.accepted_sources
        )


@dataclass(frozen=True)
class EvalReport:
    count: int
    answerable: int
    unanswerable: int
    hit_at_1: float | None
    hit_at_5: float | None
    mrr: float | None
    answer_accuracy: float | None
    answer_evidence_accuracy: float | None
    facts_retrieved: float | None  # answerable questions whose facts are in the retrieved passages
    citation_accuracy: float | None
    abstention: float | None  # unanswerable questions that got the fallback reply
    wrong_abstention: float | None  # answerable questions that got it
    hedged: float | None  # confident answers that led with a hedge
    # The model's own text and citations, shown or not (see the module docstring).
    model_answer_accuracy: float | None
    model_citation_accuracy: float | None
    generated_shown: float | None  # confident answers whose text was the model's own
    latency_p50: float | None
    latency_p95: float | None
    stages: dict[str, dict[str, float | None]] = field(default_factory=dict)
    tokens_per_second: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def load_questions(path: Path) -> list[EvalQuestion]:
    """Read a question file; a malformed line raises `QuestionFileError` naming it."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as error:
        raise QuestionFileError(f"Cannot read question file {path}: {error.strerror}.") from error
    questions: list[EvalQuestion] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            questions.append(_parse(json.loads(line)))
        except (json.JSONDecodeError, TypeError, ValueError) as error:
            raise QuestionFileError(
                f"{path}, line {number}: {error}. Each line must be a JSON object with "
                '"question" (text), "source" (a path or null), and optional "also_ok" and '
                '"must_contain" lists of strings.'
            ) from error
    if not questions:
        raise QuestionFileError(f"Question file {path} has no questions.")
    return questions


def _parse(data: object) -> EvalQuestion:
    if not isinstance(data, dict):
        raise TypeError("not a JSON object")
    text = data.get("question")
    if not isinstance(text, str) or not text.strip():
        raise ValueError('"question" must be non-empty text')
    source = data.get("source")
    if source is not None and not isinstance(source, str):
        raise ValueError('"source" must be a path or null')
    also_ok = data.get("also_ok") or []
    must_contain = data.get("must_contain") or []
    for key, value in (("also_ok", also_ok), ("must_contain", must_contain)):
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise ValueError(f'"{key}" must be a list of strings')
    return EvalQuestion(text.strip(), source or None, tuple(also_ok), tuple(must_contain))


def run_questions(
    answer: Callable[[Question, Sequence[Turn]], Answer],
    questions: Iterable[EvalQuestion],
    on_result: Callable[[EvalResult], None] | None = None,
) -> list[EvalResult]:
    """Ask every question in a thread of its own (no history carries over) and collect results.
    Nothing is recorded: test questions stay out of the answer log and thread memory."""
    results: list[EvalResult] = []
    asker = Asker(user_id="lore-eval", display_name="lore eval")
    for question in questions:
        got = answer(
            Question(question.question, asker, conversation_id="eval", thread_id=uuid.uuid4().hex),
            (),
        )
        result = result_for(question, got)
        results.append(result)
        if on_result is not None:
            on_result(result)
    return results


def result_for(question: EvalQuestion, answer: Answer) -> EvalResult:
    """The measurable parts of `answer` to `question`."""
    numbered = answer.passages  # the prompt's passages come first, numbered as the model saw them
    generated_cited = tuple(
        numbered[number - 1].path for number in cited_numbers(answer.generated) if 1 <= number <= len(numbered)
    )
    return EvalResult(
        question=question,
        retrieved=tuple(p.path for p in (answer.retrieved or answer.passages)),
        cited=tuple(c.source for c in answer.citations),
        answer=answer.text,
        evidence=tuple(e.quote for e in answer.evidence),
        confident=answer.confident,
        timings=dict(answer.timings),
        generated_tokens=answer.generated_tokens,
        generated=answer.generated,
        generated_cited=generated_cited,
        facts_retrieved=(
            _contains_all("\n".join(p.text for p in answer.retrieved or answer.passages), question.must_contain)
            if question.must_contain
            else None
        ),
        hedged=answer.hedged,
        evidence_score=answer.evidence_score,
    )


def details(result: EvalResult) -> dict[str, Any]:
    """One question's trace through the stages, for `lore eval --details`: where a miss
    happened (retrieval, the judge, the shown answer or its citations)."""
    return {
        "question": result.question.question,
        "expected_source": result.question.source,
        "must_contain": list(result.question.must_contain),
        "rank": result.rank,
        "retrieved": list(result.retrieved),
        "facts_retrieved": result.facts_retrieved,
        "evidence_score": result.evidence_score,
        "confident": result.confident,
        "hedged": result.hedged,
        "answer": result.answer,
        "answer_correct": result.answer_or_evidence_correct if result.question.must_contain else None,
        "cited": list(result.cited),
        "cited_right": result.cited_right if result.question.answerable else None,
        "generated": result.generated,
        "timings": {key: round(value, 3) for key, value in result.timings.items()},
    }


def summarize(results: Sequence[EvalResult]) -> EvalReport:
    """The metrics over `results` (None where no question measures it)."""
    answerable = [r for r in results if r.question.answerable]
    unanswerable = [r for r in results if not r.question.answerable]
    with_expectations = [r for r in answerable if r.question.must_contain]
    ranks = [r.rank for r in answerable]
    generation_seconds = sum(r.timings.get("generation", 0.0) for r in results if r.generated_tokens)
    tokens = sum(r.generated_tokens for r in results)
    return EvalReport(
        count=len(results),
        answerable=len(answerable),
        unanswerable=len(unanswerable),
        hit_at_1=_share([rank == 1 for rank in ranks]),
        hit_at_5=_share([rank is not None and rank <= 5 for rank in ranks]),
        mrr=_mean([1 / rank if rank else 0.0 for rank in ranks]),
        answer_accuracy=_share([r.answer_correct for r in with_expectations]),
        answer_evidence_accuracy=_share([r.answer_or_evidence_correct for r in with_expectations]),
        facts_retrieved=_share([bool(r.facts_retrieved) for r in with_expectations]),
        citation_accuracy=_share([r.cited_right for r in answerable]),
        abstention=_share([not r.confident for r in unanswerable]),
        wrong_abstention=_share([not r.confident for r in answerable]),
        hedged=_share([r.hedged for r in results if r.confident]),
        model_answer_accuracy=_share([r.model_answer_correct for r in with_expectations]),
        model_citation_accuracy=_share([r.model_cited_right for r in answerable]),
        generated_shown=_share([r.generated_shown for r in results if r.confident]),
        latency_p50=percentile([r.timings.get("total", 0.0) for r in results], 50),
        latency_p95=percentile([r.timings.get("total", 0.0) for r in results], 95),
        stages={
            stage: {
                "p50": percentile(_stage(results, stage), 50),
                "p95": percentile(_stage(results, stage), 95),
            }
            for stage in STAGES
        },
        tokens_per_second=tokens / generation_seconds if generation_seconds > 0 else None,
    )


def same_path(found: str, expected: str) -> bool:
    """Whether two document paths name the same file (see the module docstring)."""
    a, b = _normal(found), _normal(expected)
    if a == b:
        return True
    shorter, longer = sorted((a, b), key=len)
    return bool(shorter) and longer.endswith("/" + shorter)


def percentile(values: Sequence[float], q: float) -> float | None:
    """The nearest-rank `q`th percentile, or None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def _stage(results: Sequence[EvalResult], stage: str) -> list[float]:
    return [r.timings[stage] for r in results if stage in r.timings]


def _normal(path: str) -> str:
    return path.strip().removeprefix("./").strip("/")


def _contains_all(text: str, needles: Sequence[str]) -> bool:
    """Case-insensitive, and blind to how white space wraps (a fact split over two lines of a
    file is still the fact)."""
    lowered = " ".join(text.lower().split())
    return all(" ".join(needle.lower().split()) in lowered for needle in needles)


def _share(flags: Sequence[bool]) -> float | None:
    return sum(flags) / len(flags) if flags else None


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None
