"""Citation markers: the answer refers to passages as [n] (or [n, m]). A marker naming a
passage that was not given is removed, and so is one naming a passage that does not hold what
the sentence citing it says: a citation lends the sentence the authority of its source, so a
document (or a confused model) must not be able to pin its own words on another one."""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping

from bot.core.links import without_urls
from bot.core.text import content_terms

_MARKER = re.compile(r"\[\s*(\d+(?:\s*,\s*\d+)*)\s*\]")
# Where a sentence ends: after . ! or ? (and closing quotes or brackets) before white space,
# or at a line break. "2.5" and "e.g.," stay inside their sentence.
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+|\n+")
# The share of a sentence's content words (stemmed) that a passage it cites must contain. Not
# measured (that needs the model writing answers to the benchmark questions; see the README's
# "Answers"): chosen to be lenient. The grounding check already requires 75% of the words of the
# whole text to be in the passages together (agent.MAX_UNSUPPORTED_SHARE), so a sentence taken
# from one passage clears half in it with room to spare, and a sentence drawing on two passages
# that cites both mostly does too; a citation to a passage sharing only the topic's words (or
# none) fails.
MIN_CITED_SHARE = 0.5
# Sentences with fewer content words ("Yes [1].", "See [2].") say too little to check.
MIN_CHECKED_TERMS = 2


def cited_numbers(text: str) -> list[int]:
    """Passage numbers cited in `text`, in order of first mention, without repeats."""
    numbers: list[int] = []
    for match in _MARKER.finditer(text):
        for part in match.group(1).split(","):
            number = int(part)
            if number not in numbers:
                numbers.append(number)
    return numbers


def drop_invalid_citations(text: str, valid: Collection[int]) -> str:
    """`text` with every cited number outside `valid` removed (and empty markers dropped)."""
    return _rewrite(text, lambda number, sentence: number in valid)


def drop_unsupported_citations(text: str, passages: Mapping[int, str]) -> str:
    """`text` with every citation removed whose passage (`passages[n]`: its text, title and
    heading) holds less than `MIN_CITED_SHARE` of the content words of the sentence citing it.
    The sentence stays: its words already passed the grounding check against all the passages,
    and only the claim about where they come from was wrong. A marker opening a sentence
    ("… per year. [1]") belongs to the sentence before it."""
    known = {number: set(content_terms(source)) for number, source in passages.items()}

    def supported(number: int, sentence: str) -> bool:
        terms = set(content_terms(without_urls(sentence)))
        if len(terms) < MIN_CHECKED_TERMS:
            return True
        found = len(terms & known.get(number, set()))
        return found / len(terms) >= MIN_CITED_SHARE

    return _rewrite(text, supported)


def _rewrite(text: str, keep: Callable[[int, str], bool]) -> str:
    """`text` keeping the cited numbers `keep(number, citing sentence)` accepts."""
    starts = [0] + [end.end() for end in _SENTENCE_END.finditer(text)]
    sentences = [text[start:end] for start, end in zip(starts, starts[1:] + [len(text)], strict=True)]

    def sentence_of(position: int) -> str:
        index = max(i for i, start in enumerate(starts) if start <= position)
        if index > 0 and not _MARKER.sub("", text[starts[index] : position]).strip():
            index -= 1  # the marker opens its segment: it ends the sentence before
        return _MARKER.sub("", sentences[index])

    def rewrite(match: re.Match[str]) -> str:
        sentence = sentence_of(match.start())
        kept = [part.strip() for part in match.group(1).split(",") if keep(int(part), sentence)]
        return f"[{', '.join(kept)}]" if kept else ""

    cleaned = _MARKER.sub(rewrite, text)
    return re.sub(r"[ \t]+([.,;:!?])", r"\1", re.sub(r"[ \t]{2,}", " ", cleaned)).strip()
