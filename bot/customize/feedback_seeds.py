"""Feedback as training material: 👍 answers are examples as logged, 👎 with a correction are
examples with the correction, and 👎 without one are gaps: reported, never trained on."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from bot.customize.examples import Seed
from bot.store.answers import AnswerLog, StoredAnswer
from bot.store.feedback import FeedbackStore
from knowledge.types import EVERYONE


@dataclass(frozen=True)
class Gap:
    """A question users found badly answered, with nobody saying what the answer is."""

    answer_id: str
    question: str
    feedback: str  # what the user said was wrong

    def to_dict(self) -> dict[str, str]:
        return {"answer_id": self.answer_id, "question": self.question, "feedback": self.feedback}


@dataclass(frozen=True)
class FeedbackHarvest:
    seeds: tuple[Seed, ...]
    gaps: tuple[Gap, ...]
    skipped: dict[str, int] = field(default_factory=dict)  # reason → count


def harvest_feedback(
    feedback: FeedbackStore, answers: AnswerLog, include_restricted: bool = False
) -> FeedbackHarvest:
    """Seeds and gaps from all stored feedback; the newest rating of each answer counts.

    Answers that used a document not readable by `everyone` are left out unless
    `include_restricted` (a shared adapter may repeat what it learns to anyone)."""
    seeds: list[Seed] = []
    gaps: list[Gap] = []
    skipped: Counter[str] = Counter()
    seen: set[str] = set()
    for item in feedback.list():  # newest first
        if item.answer_id is None or item.rating is None or item.answer_id in seen:
            continue
        seen.add(item.answer_id)
        stored = answers.get(item.answer_id)
        if stored is None:
            skipped["answer_purged"] += 1
            continue
        if not include_restricted and not _public(stored):
            skipped["restricted"] += 1
            continue
        if item.rating == "not_helpful" and not item.correction.strip():
            gaps.append(Gap(stored.id, stored.question, item.text.strip()))
            continue
        if item.rating == "helpful" and not stored.confident:
            skipped["helpful_fallback"] += 1  # the fallback text teaches nothing about the topic
            continue
        correction = item.rating == "not_helpful"
        seeds.append(
            Seed(
                question=stored.question,
                answer=item.correction.strip() if correction else stored.answer,
                kind="feedback_correction" if correction else "feedback_helpful",
                origin="feedback",
                document=_document(stored),
                cited_paths=tuple(c["source"] for c in stored.citations if c.get("source")),
            )
        )
    return FeedbackHarvest(tuple(seeds), tuple(gaps), dict(skipped))


def _public(stored: StoredAnswer) -> bool:
    return all(EVERYONE in p.get("principals", [EVERYONE]) for p in stored.passages)


def _document(stored: StoredAnswer) -> str:
    cited = [c["source"] for c in stored.citations if c.get("source")]
    for passage in stored.passages:
        if cited and passage.get("path") == cited[0]:
            return f"{passage['source']}:{passage['path']}"
    return f"feedback:{stored.id}"
