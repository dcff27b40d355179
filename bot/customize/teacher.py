"""Training questions written by a teacher model (`customize.teacher_base_url`).

The offline derivation turns headings and templates into questions, which teaches a model to
refuse more than to answer (see the stack notes). A larger model behind an OpenAI-compatible
endpoint reads each chunk that goes into the dataset and writes the questions employees would
really ask about it, in their own words, each with a short answer in the chunk's words. Its
replies are checked before they are used: a reply that is not the JSON asked for is skipped,
and an answer that names a number or name the chunk lacks, or is mostly words the chunk does
not have (the agent's own grounding check), is dropped. What survives becomes `Seed`s on the
same RAFT path as the derived pairs; the dataset card counts what was kept and dropped.
"""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from collections.abc import Sequence
from typing import Any, Protocol

from bot.core.agent import MAX_UNSUPPORTED_SHARE
from bot.core.grounding import is_degenerate, ungrounded_terms, unsupported_share
from bot.customize.derivation import QAPair
from bot.errors import BusyError, ModelEndpointError
from bot.model.base import ChatMessage, GenerationSettings
from bot.settings import CustomizeSettings
from knowledge.errors import LoreError

log = logging.getLogger(__name__)

TEACHER_KIND = "teacher"
MAX_QUESTION_CHARS = 300
MAX_ANSWER_CHARS = 600
# Room for one question and its answer in the reply, plus the JSON around them.
REPLY_TOKENS_PER_PAIR = 160
REPLY_TOKENS_OVERHEAD = 40

INSTRUCTIONS = """You write training data for a company's internal assistant.
You are given one passage of a company document. Write {count} different questions that
employees would really ask in chat and that this passage answers: in their own everyday words,
not the document's headings or phrasing. For each question write a short answer (one or two
sentences) that quotes or closely follows the passage: no number, name or fact that is not in
the passage.
Reply with JSON only, no other text, in exactly this form:
{{"pairs": [{{"question": "...", "answer": "..."}}]}}
If the passage answers nothing an employee would ask, reply {{"pairs": []}}."""

_FENCE = re.compile(r"^\s*```(?:json)?\s*|\s*```\s*$", re.IGNORECASE)
_CITATION = re.compile(r"\s*\[\d+(?:\s*,\s*\d+)*\]")


class TeacherError(LoreError):
    """The teacher model is misconfigured or its endpoint failed."""


class ChatCompletion(Protocol):
    """What the teacher needs of a model: one whole reply per request (`OpenAIModel`)."""

    def generate(self, messages: Sequence[ChatMessage], settings: GenerationSettings | None = None) -> str:
        """The whole reply to `messages`."""


class Teacher:
    """Asks `model` for `questions_per_chunk` question/answer pairs per chunk and keeps the
    ones the chunk supports; `tally` counts chunks asked, pairs kept and what was dropped."""

    def __init__(self, model: ChatCompletion, questions_per_chunk: int = 2, name: str = "") -> None:
        if questions_per_chunk < 1:
            raise TeacherError(f"customize.teacher_questions_per_chunk is {questions_per_chunk}: set it to 1 or more.")
        self.model = model
        self.name = name
        self.questions_per_chunk = questions_per_chunk
        self.tally: Counter[str] = Counter()
        # Greedy, and no repetition penalty: strict endpoints refuse the field.
        self._generation = GenerationSettings(
            max_new_tokens=REPLY_TOKENS_PER_PAIR * questions_per_chunk + REPLY_TOKENS_OVERHEAD,
            temperature=0.0,
            repetition_penalty=1.0,
        )

    def pairs(self, title: str, heading: str, text: str) -> list[QAPair]:
        """The pairs the teacher writes for one chunk (heading path as `A > B`), at most
        `questions_per_chunk`, each answer checked against the chunk; [] for a bad reply."""
        self.tally["chunks"] += 1
        try:
            reply = self.model.generate(self._messages(title, heading, text), self._generation)
        except (ModelEndpointError, BusyError) as error:
            raise TeacherError(
                f"The teacher model {self.name!r} failed: {error}. The teacher is configured by "
                "customize.teacher_base_url, customize.teacher_model and customize.teacher_api_key "
                "(LORE_CUSTOMIZE__TEACHER_*); unset teacher_base_url to derive questions offline."
            ) from error
        entries = parse_reply(reply)
        if entries is None:
            self.tally["malformed_replies"] += 1
            log.debug("Teacher reply for %r > %r is not the JSON asked for: %.200r", title, heading, reply)
            return []
        sources = [text, title, heading]
        kept: list[QAPair] = []
        for entry in entries:
            pair = _pair(entry)
            if pair is None:
                self.tally["invalid_pairs"] += 1
            elif not is_supported(pair.answer, sources):
                self.tally["unsupported_answers"] += 1
            elif len(kept) < self.questions_per_chunk:
                kept.append(pair)
        self.tally["pairs"] += len(kept)
        return kept

    def report(self) -> dict[str, Any]:
        """What the dataset card records: the teacher model's name and the counts."""
        counts = {
            key: self.tally[key]
            for key in ("chunks", "pairs", "malformed_replies", "invalid_pairs", "unsupported_answers")
        }
        return {"model": self.name, **counts}

    def close(self) -> None:
        """Close the model's connections, when it holds any."""
        close = getattr(self.model, "close", None)
        if callable(close):
            close()

    def _messages(self, title: str, heading: str, text: str) -> list[ChatMessage]:
        where = f"Document: {title}" + (f"\nSection: {heading}" if heading else "")
        return [
            ChatMessage("system", INSTRUCTIONS.format(count=self.questions_per_chunk)),
            ChatMessage("user", f"{where}\n\nPassage:\n{text.strip()}"),
        ]


def open_teacher(settings: CustomizeSettings, timeout_seconds: float = 120.0) -> Teacher | None:
    """The teacher `settings` configure, or None when `teacher_base_url` is unset (offline)."""
    if not settings.teacher_base_url:
        return None
    if not settings.teacher_model.strip():
        raise TeacherError(
            "customize.teacher_base_url is set but customize.teacher_model is empty: set it to the "
            "model the endpoint serves (LORE_CUSTOMIZE__TEACHER_MODEL)."
        )
    from bot.model.openai_backend import OpenAIModel

    model = OpenAIModel(
        settings.teacher_base_url,
        settings.teacher_model,
        api_key=settings.teacher_api_key,
        timeout_seconds=timeout_seconds,
    )
    return Teacher(model, settings.teacher_questions_per_chunk, name=settings.teacher_model)


def parse_reply(reply: str) -> list[Any] | None:
    """The entries of a `{"pairs": [...]}` reply (a bare list is accepted too), reading past
    a Markdown code fence or text around the JSON object; None when there is no such JSON."""
    text = _FENCE.sub("", reply.strip())
    for candidate in (text, text[text.find("{") : text.rfind("}") + 1]):
        try:
            data = json.loads(candidate)
        except ValueError:
            continue
        entries = data.get("pairs") if isinstance(data, dict) else data
        if isinstance(entries, list):
            return entries
    return None


def is_supported(answer: str, sources: Sequence[str]) -> bool:
    """Whether the chunk (`sources`: its text, title, heading) backs `answer`: every number
    and name in it is there, and at most the agent's share of its content words is not."""
    return not ungrounded_terms(answer, sources) and unsupported_share(answer, sources) <= MAX_UNSUPPORTED_SHARE


def _pair(entry: Any) -> QAPair | None:
    if not isinstance(entry, dict):
        return None
    question, answer = entry.get("question"), entry.get("answer")
    if not isinstance(question, str) or not isinstance(answer, str):
        return None
    question = " ".join(question.split())
    # The dataset cites the right passage by its number in the prompt; the teacher's own marks go.
    answer = " ".join(_CITATION.sub("", answer).split())
    if not question or len(question) > MAX_QUESTION_CHARS or len(answer) > MAX_ANSWER_CHARS or is_degenerate(answer):
        return None
    return QAPair(question, answer, TEACHER_KIND)
