"""Feedback as training material: 👍 answers are examples as logged, 👎 with an approved
correction are examples with the correction, and 👎 without one are gaps: reported, never
trained on.

Only the asker's own feedback, or an admin's (`customize.admins`), counts: anyone in a channel
can rate an answer posted there, and a stranger's "right answer" must not be trained into the
adapter everyone is answered with. A correction counts only once approved."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from bot.customize.examples import Seed
from bot.store.answers import AnswerLog, StoredAnswer
from bot.store.feedback import FeedbackStore, may_teach
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
    feedback: FeedbackStore,
    answers: AnswerLog,
    include_restricted: bool = False,
    admins: frozenset[str] = frozenset(),
) -> FeedbackHarvest:
    """Seeds and gaps from the stored feedback that `may_teach`; the newest such rating of each
    answer counts. Corrections count once approved; pending or rejected ones leave a gap.

    Answers that used a document not readable by `everyone` are left out unless
    `include_restricted` (a shared adapter may repeat what it learns to anyone)."""
    seeds: list[Seed] = []
    gaps: list[Gap] = []
    skipped: Counter[str] = Counter()
    seen: set[str] = set()
    for item in feedback.list():  # newest first
        if item.answer_id is None or item.rating is None or item.answer_id in seen:
            continue
        stored = answers.get(item.answer_id)
        if stored is None:
            seen.add(item.answer_id)
            skipped["answer_purged"] += 1
            continue
        if not may_teach(item, stored, admins):
            skipped["not_the_askers"] += 1  # a signal for people, never training data
            continue
        seen.add(item.answer_id)
        if not include_restricted and not _public(stored):
            skipped["restricted"] += 1
            continue
        if item.rating == "not_helpful" and item.review != "approved":
            if item.review == "pending":
                skipped["correction_pending"] += 1
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
    return all(EVERYONE in p.get("principals", []) for p in stored.passages)


def _document(stored: StoredAnswer) -> str:
    cited = [c["source"] for c in stored.citations if c.get("source")]
    for passage in stored.passages:
        if cited and passage.get("path") == cited[0]:
            return f"{passage['source']}:{passage['path']}"
    return f"feedback:{stored.id}"
