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
# The share of what a sentence says beyond the question (`claimed_terms`) that a passage it
# cites must contain. Measured without the model (benchmarks/citation_support.py, Sourcegraph
# tuning half, on a fact's sentence copied from its page and on the asker's words plus the
# fact): 1.00 and 0.95 of right citations kept, 0.93 and 0.81 of citations to a retrieved
# distractor dropped. Higher values scored a little better there, but those stand-in sentences
# are copies, not paraphrases, so the lenient half was kept (a model that paraphrases keeps its
# citations); a citation to a passage sharing only the topic's words fails either way.
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


def drop_unsupported_citations(text: str, passages: Mapping[int, str], asked: str = "") -> str:
    """`text` with every citation removed whose passage (`passages[n]`: its text, title and
    heading) holds less than `MIN_CITED_SHARE` of what the sentence citing it says beyond the
    question `asked` (`claimed_terms`). The sentence stays: its words already passed the
    grounding check against all the passages, and only the claim about where they come from
    was wrong. A marker opening a sentence ("… per year. [1]") belongs to the sentence before."""
    known = {number: set(content_terms(source)) for number, source in passages.items()}

    def supported(number: int, sentence: str) -> bool:
        if len(set(content_terms(without_urls(sentence)))) < MIN_CHECKED_TERMS:
            return True
        said = claimed_terms(sentence, asked)
        return len(said & known.get(number, set())) / len(said) >= MIN_CITED_SHARE

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


def claimed_terms(sentence: str, asked: str = "") -> set[str]:
    """The content words (stemmed) `sentence` asserts beyond the question `asked`: what a
    citation vouches for. The asker's own words are in every retrieved passage's topic, so they
    tell the right passage from the wrong one poorly; all of them when nothing else is left."""
    said = set(content_terms(without_urls(sentence)))
    return (said - set(content_terms(asked))) or said
