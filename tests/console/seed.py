"""A few logged answers and feedback items for the console's tests: answered and not covered,
in channels and in private, rated 👍 and 👎, one 👎 with a correction waiting for review.
Written through the same stores the bot writes with (AnswerLog, FeedbackStore)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from bot.store.answers import AnswerLog
from bot.store.database import Database
from bot.store.feedback import Feedback, FeedbackStore
from bot.types import Answer, Asker, Citation, Evidence, Question

PTO_CITATION = Citation(1, "people/time-off.md", "Time off", "Carry-over", "")
PRIVATE_SECRET = "my manager is the reason I want to transfer"
CORRECTION = "Five unused days carry over to the next year, until 31 March."


@dataclass(frozen=True)
class Seeded:
    """The ids the tests look for."""

    answered: str
    not_covered: str
    private: str
    corrected: str  # an answer whose asker proposed a correction
    correction_feedback: int  # that correction's feedback id (pending)
    stranger_feedback: int  # a correction by someone who did not ask (may never train)
    tag: str  # a word only these answers' questions hold


def seed(database: Database) -> Seeded:
    tag = "zq" + uuid.uuid4().hex[:8]
    answers, feedback = AnswerLog(database), FeedbackStore(database)
    answered = record_answer(
        answers, f"How many PTO days carry over {tag}?", "Five days carry over [1].", True, "channel"
    )
    not_covered = record_answer(
        answers, f"Where is the parking garage {tag}?", "I couldn't find this.", False, "channel"
    )
    private = record_answer(
        answers, f"Can I transfer teams, {PRIVATE_SECRET} {tag}?", "Ask People Ops [1].", True, "private"
    )
    corrected = record_answer(
        answers, f"When do carried-over days expire {tag}?", "They never expire [1].", True, "channel"
    )
    feedback.record(Feedback(answer_id=answered, platform="slack", user_id="U_ADA", rating="helpful"))
    feedback.record(
        Feedback(
            answer_id=not_covered, platform="slack", user_id="U_ADA", rating="not_helpful", text="we do have a garage"
        )
    )
    correction = feedback.record(
        Feedback(
            answer_id=corrected,
            platform="slack",
            user_id="U_ADA",  # the asker
            rating="not_helpful",
            text="wrong date",
            correction=CORRECTION,
        )
    )
    stranger = feedback.record(
        Feedback(
            answer_id=answered,
            platform="slack",
            user_id="U_MALLORY",  # not the asker, not a customize admin
            rating="not_helpful",
            correction="Unlimited days carry over forever.",
        )
    )
    return Seeded(answered, not_covered, private, corrected, correction, stranger, tag)


def record_answer(answers: AnswerLog, text: str, reply: str, confident: bool, place: str) -> str:
    answer_id = uuid.uuid4().hex
    question = Question(
        text,
        Asker("U_ADA", "Ada", "ada@example.com"),
        conversation_id="D_ADA" if place == "private" else "C_GENERAL",
        thread_id=answer_id,
        platform="slack",
        place=place,  # type: ignore[arg-type]
    )
    answers.record(
        Answer(
            id=answer_id,
            question=question,
            text=reply,
            citations=(PTO_CITATION,) if confident else (),
            evidence=(Evidence(PTO_CITATION.source, "Up to five unused days carry over.", PTO_CITATION.title),)
            if confident
            else (),
            passages=(),
            confident=confident,
            model="SmolLM2-135M-Instruct",
            adapter=None,
            timings={"retrieval": 0.12, "total": 0.8},
        )
    )
    return answer_id
