"""Excerpts: what the asker is shown when the model does not write the answer.

An excerpt is a short run of consecutive sentences of one passage: the sentence that best
answers the question with its neighbours, so that the fact it holds keeps the context that
makes it readable ("It is 20 weeks." needs the sentence before it). A table row comes with its
table's header row, so its cells keep their column names. The passage's title and heading
path label it. Measured against single quoted sentences on question sets nobody tuned on
(benchmarks/answer_quality.py): see README, "Answers".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bot.core.evidence import MAX_QUOTE_CHARS, MIN_QUOTE_WORDS, SentenceScorer
from bot.core.text import split_sentences
from knowledge.types import Passage

MAX_EXCERPT_CHARS = 800  # neighbours are added nearest first while the excerpt stays within this
_TABLE_RULE = set("|-: ")


@dataclass(frozen=True)
class Excerpt:
    number: int  # the passage's number among those the answer draws on
    passage: Passage
    text: str  # consecutive sentences of the passage, verbatim up to white space
    sentence: str  # the sentence that answers best, inside `text`
    score: float

    @property
    def label(self) -> str:
        """Where the excerpt comes from: title and heading path."""
        return " > ".join(part for part in (self.passage.title, self.passage.heading) if part)


@dataclass(frozen=True)
class ExcerptRules:
    """How excerpts are cut and how many are shown. The defaults were chosen with
    `benchmarks/answer_quality.py --sweep` on the Sourcegraph question set's tuning half (the
    highest sum of shown-answer and citation accuracy: 0.67 and 0.88, against 0.31 and 0.76
    for one to three single sentences) and reported on its report half and on the 18F
    handbook (benchmarks/README.md)."""

    before: int = 10  # sentences kept before the best one, while `max_chars` allows
    after: int = 10  # ... and after it
    limit: int = 2  # excerpts at most, each from a different document
    # A further excerpt only when its best sentence scores at least this share of the best
    # (0: always): a second document often holds the fact the first one's best sentence missed.
    keep_ratio: float = 0.0
    max_chars: int = MAX_EXCERPT_CHARS
    # Subtracted from a sentence's score per place its passage sits below retrieval's best:
    # retrieval ranks whole passages with two signals, the scorer single sentences with one.
    rank_weight: float = 0.06


def select_excerpts(
    question: str,
    numbered: Sequence[tuple[int, Passage]],
    scorer: SentenceScorer,
    rules: ExcerptRules = ExcerptRules(),
) -> list[Excerpt]:
    """The best excerpts of `numbered` passages for `question`, best first, at most one per
    document. Empty when no passage has a sentence worth quoting."""
    units = [(number, passage, _sentences(passage)) for number, passage in numbered]
    candidates = [
        (number, passage, sentences, index)
        for number, passage, sentences in units
        for index, sentence in enumerate(sentences)
        if _quotable(sentence)
    ]
    if not candidates:
        return []
    scores = scorer.score(question, [sentences[index] for _, _, sentences, index in candidates])
    first = min(number for number, _ in numbered)
    ranked = sorted(
        (
            # Ties go to the passage retrieval ranked higher.
            (score - (rules.rank_weight + 0.001) * (number - first), number, passage, sentences, index)
            for (number, passage, sentences, index), score in zip(candidates, scores, strict=True)
        ),
        key=lambda item: item[0],
        reverse=True,
    )
    best = ranked[0][0]
    chosen: list[Excerpt] = []
    documents: set[tuple[str, str]] = set()
    for score, number, passage, sentences, index in ranked:
        if len(chosen) == rules.limit:
            break
        document = (passage.source, passage.path)
        if document in documents:
            continue
        if chosen and (score <= 0 or score < best * rules.keep_ratio):
            break
        documents.add(document)
        chosen.append(Excerpt(number, passage, _window(sentences, index, rules), sentences[index], score))
    return chosen


def excerpt_around(number: int, passage: Passage, sentence: str, rules: ExcerptRules = ExcerptRules()) -> Excerpt:
    """The excerpt `select_excerpts` would cut around `sentence` of `passage` (another
    ranking's choice of sentence)."""
    sentences = _sentences(passage)
    return Excerpt(number, passage, _window(sentences, sentences.index(sentence), rules), sentence, 0.0)


def candidate_sentences(passage: Passage) -> list[str]:
    """The sentences of `passage` an excerpt may be cut around."""
    return [sentence for sentence in _sentences(passage) if _quotable(sentence)]


def excerpts_text(excerpts: Sequence[Excerpt], lead: str = "") -> str:
    """The excerpts as the answer text: each under its label, with its citation."""
    parts = [lead] if lead else []
    for excerpt in excerpts:
        label = f"*{excerpt.label}* " if excerpt.label else ""
        parts.append(f"{label}[{excerpt.number}]\n{excerpt.text}")
    return "\n\n".join(parts)


def _sentences(passage: Passage) -> list[str]:
    return [s for s in dict.fromkeys(split_sentences(passage.text)) if not _is_table_rule(s)]


def _quotable(sentence: str) -> bool:
    limit = MAX_QUOTE_CHARS * 2 if _is_table_row(sentence) else MAX_QUOTE_CHARS
    return len(sentence) <= limit and len(sentence.split()) >= MIN_QUOTE_WORDS


def _window(sentences: Sequence[str], index: int, rules: ExcerptRules) -> str:
    """The best sentence with up to `before`/`after` neighbours, nearest first, within
    `max_chars`. A table row takes its table's header row instead of neighbouring rows."""
    if _is_table_row(sentences[index]):
        header = next((s for s in sentences[:index] if _is_table_row(s)), None)
        rows = [header, sentences[index]] if header is not None else [sentences[index]]
        return "\n".join(rows)
    start = end = index
    length = len(sentences[index])
    for step in range(1, max(rules.before, rules.after) + 1):
        for neighbour, allowed in ((index - step, rules.before), (index + step, rules.after)):
            if step > allowed or not 0 <= neighbour < len(sentences):
                continue
            if _is_table_row(sentences[neighbour]):
                continue
            if length + len(sentences[neighbour]) > rules.max_chars:
                continue
            if neighbour == start - 1:
                start = neighbour
            elif neighbour == end + 1:
                end = neighbour
            else:
                continue
            length += len(sentences[neighbour])
    return " ".join(sentences[start : end + 1])


def _is_table_row(sentence: str) -> bool:
    return sentence.startswith("|")


def _is_table_rule(sentence: str) -> bool:
    return sentence.startswith("|") and set(sentence) <= _TABLE_RULE
