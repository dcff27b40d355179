"""RAFT-style training examples in exactly the prompt the agent builds at answer time.

An example is the question, the passages the real retriever returns for it (the right one
among distractors, in retrieval order; for a share of examples only distractors), and the
target: the answer citing the right passage by its number, or the agent's "not covered" reply.
The prompt comes from `bot.core.prompt.fit_prompt`, the function the agent itself calls, so
training and answering see the same text.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal, TypedDict

from bot.core.glossary import Glossary
from bot.core.judge import PassageSearch
from bot.core.prompt import NOT_COVERED, fit_prompt
from bot.core.text import content_words
from bot.customize.redaction import Redactor
from bot.model.base import ChatMessage
from knowledge.config import RetrievalSettings
from knowledge.types import Passage, SearchFilters

MUST_CONTAIN_TERMS = 2
_NUMBER = re.compile(r"\b\d[\d.,:]*\d\b|\b\d\b")
_NAME = re.compile(r"\b[A-Z][\w-]+(?: [A-Z][\w-]+)*")
_CITATION = re.compile(r"\s*\[\d+\]")
_PLACEHOLDER = re.compile(r"\[REDACTED [a-z_]+\]")


@dataclass(frozen=True)
class Seed:
    """A question with its answer, before retrieval turns it into an example."""

    question: str
    answer: str
    kind: str  # faq, heading, definition, table_row, key_value, curated_*, feedback_*
    origin: str  # document | curated | feedback
    document: str  # split key: `source:path`, or `curated:<file>` for an uncited curated file
    golden: Passage | None = None  # the passage that answers it, when known
    cited_paths: tuple[str, ...] = ()  # feedback: the paths the logged answer cited


class MessageRecord(TypedDict):
    role: Literal["system", "user", "assistant"]
    content: str


class ExampleRecord(TypedDict):
    """An `Example` as one line of a dataset's JSONL files."""

    messages: list[MessageRecord]
    target: str
    question: str
    kind: str
    origin: str
    document: str
    source: str | None
    covered: bool
    must_contain: list[str]


@dataclass(frozen=True)
class Example:
    """One training example: the agent's chat messages and the reply to learn."""

    messages: tuple[ChatMessage, ...]
    target: str
    question: str
    kind: str
    origin: str
    document: str
    source: str | None  # path of the document that answers it (None: unknown)
    covered: bool  # False: only distractors, the target is the "not covered" reply
    must_contain: tuple[str, ...] = field(default=())

    def to_record(self) -> ExampleRecord:
        """The JSONL form."""
        return {
            "messages": [{"role": m.role, "content": m.content} for m in self.messages],
            "target": self.target,
            "question": self.question,
            "kind": self.kind,
            "origin": self.origin,
            "document": self.document,
            "source": self.source,
            "covered": self.covered,
            "must_contain": list(self.must_contain),
        }

    @classmethod
    def from_record(cls, record: ExampleRecord) -> Example:
        """Read back what `to_record` wrote."""
        messages = tuple(ChatMessage(m["role"], m["content"]) for m in record["messages"])
        return cls(
            messages=messages,
            target=str(record["target"]),
            question=str(record["question"]),
            kind=str(record["kind"]),
            origin=str(record["origin"]),
            document=str(record["document"]),
            source=record.get("source"),
            covered=bool(record["covered"]),
            must_contain=tuple(record.get("must_contain") or ()),
        )


@dataclass
class RedactionLedger:
    """Redacts texts once each (a passage appears in many prompts) and counts what it found."""

    redactor: Redactor
    counts: dict[str, int] = field(default_factory=dict)
    _seen: dict[str, str] = field(default_factory=dict)

    def __call__(self, text: str) -> str:
        if text not in self._seen:
            clean, found = self.redactor.redact(text)
            for kind, count in found.items():
                self.counts[kind] = self.counts.get(kind, 0) + count
            self._seen[text] = clean
        return self._seen[text]

    def passage(self, passage: Passage) -> Passage:
        return replace(passage, text=self(passage.text), title=self(passage.title), heading=self(passage.heading))


class RaftBuilder:
    """Turns seeds into examples with the agent's retrieval and prompt."""

    def __init__(
        self,
        retriever: PassageSearch,
        retrieval: RetrievalSettings,
        persona: str,
        glossary: Glossary | None,
        count_tokens: Callable[[Sequence[ChatMessage]], int],
        budget: int,
        redact: RedactionLedger,
        filters: SearchFilters | None = None,
        distractor_share: float = 0.05,
    ) -> None:
        """`budget`: prompt tokens allowed (training's maximum length less the answer's room);
        `filters`: what retrieval may return (the public documents, unless told otherwise)."""
        self._retriever = retriever
        self._retrieval = retrieval
        self._persona = persona
        self._glossary = glossary
        self._count = count_tokens
        self._budget = budget
        self._redact = redact
        self._filters = filters
        self._distractor_share = distractor_share

    def build(self, seed: Seed) -> Example | None:
        """The example for `seed`, or None when the right passage cannot be put in the prompt."""
        question, answer = self._redact(seed.question), self._redact(seed.answer)
        retrieved = self._retriever.search(
            seed.question,
            k=self._retrieval.k,
            filters=self._filters,
            max_per_document=self._retrieval.max_per_document,
        )
        # Only derived questions lose their passage: what users asked and corrected is kept whole.
        if seed.origin == "document" and _fraction(seed.question + seed.document) < self._distractor_share:
            return self._distractors_only(seed, question, retrieved)
        passages, right = self._with_right_passage(seed, retrieved)
        passages = [self._redact.passage(p) for p in passages]
        prompt = fit_prompt(question, passages, [], self._persona, self._glossary, self._count, self._budget)
        numbers = [n for n, p in enumerate(prompt.passages, 1) if right(p)]
        if not numbers and (seed.golden is not None or seed.cited_paths):
            return None  # cut for length: an answer citing nothing given would teach guessing
        # A curated answer no passage backs is taught as written, without a citation.
        plain = _CITATION.sub("", answer).strip()
        target = f"{plain} [{numbers[0]}]" if numbers else plain
        source = prompt.passages[numbers[0] - 1].path if numbers else None
        return Example(
            messages=prompt.messages,
            target=target,
            question=question,
            kind=seed.kind,
            origin=seed.origin,
            document=seed.document,
            source=source,
            covered=True,
            must_contain=must_contain(question, answer),
        )

    def _with_right_passage(
        self, seed: Seed, retrieved: list[Passage]
    ) -> tuple[list[Passage], Callable[[Passage], bool]]:
        if seed.golden is not None:
            golden = seed.golden

            def right(p: Passage) -> bool:
                return p.chunk_id == golden.chunk_id

            if not any(right(p) for p in retrieved):
                # Retrieval missed it: the weakest passage makes room, the others keep their order.
                retrieved = [*retrieved[: max(0, self._retrieval.k - 1)], golden]
            return retrieved, right
        if seed.cited_paths:
            return retrieved, lambda p: p.path in seed.cited_paths
        words = set(content_words(seed.answer))
        return retrieved, lambda p: bool(words) and len(words & set(content_words(p.text))) / len(words) >= 0.6

    def _distractors_only(self, seed: Seed, question: str, retrieved: list[Passage]) -> Example | None:
        answering = {seed.golden.path} if seed.golden is not None else set(seed.cited_paths)
        pool = retrieved + self._retriever.search(
            seed.question,
            k=self._retrieval.k * 3,
            filters=self._filters,
            max_per_document=self._retrieval.max_per_document,
        )
        distractors: list[Passage] = []
        for passage in pool:
            if passage.path in answering or f"{passage.source}:{passage.path}" == seed.document:
                continue
            if passage.chunk_id not in {p.chunk_id for p in distractors}:
                distractors.append(passage)
        distractors = [self._redact.passage(p) for p in distractors[: self._retrieval.k]]
        if not distractors:
            return None
        prompt = fit_prompt(question, distractors, [], self._persona, self._glossary, self._count, self._budget)
        return Example(
            messages=prompt.messages,
            target=NOT_COVERED,
            question=question,
            kind=seed.kind,
            origin=seed.origin,
            document=seed.document,
            source=None,
            covered=False,
        )


def must_contain(question: str, answer: str) -> tuple[str, ...]:
    """Up to two terms of `answer` a correct reply must contain (for `lore eval`): numbers
    first, then names, then its longest content word, leaving out what the question says."""
    asked = question.lower()
    answer = _PLACEHOLDER.sub(" ", answer)
    found: list[str] = []
    candidates = (
        _NUMBER.findall(answer) + _NAME.findall(answer)[1:] + sorted(content_words(answer), key=len, reverse=True)
    )
    for term in candidates:
        term = term.strip(".,:")
        if len(term) < 1 or term.lower() in asked or any(term.lower() in f.lower() for f in found):
            continue
        found.append(term)
        if len(found) == MUST_CONTAIN_TERMS:
            break
    return tuple(found)


def _fraction(text: str) -> float:
    """A stable number in [0, 1) for `text`: which examples get only distractors."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") / 2**64
