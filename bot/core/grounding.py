"""The check a generated answer must pass to be shown: no number (in digits or words) or name
in it that none of the passages (or the question) contains, most of its content words found in
them too, and no degenerate output (empty, looping)."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

from bot.core.text import content_terms

_CITATION = re.compile(r"\[\s*\d+(?:\s*,\s*\d+)*\s*\]")
_NUMBER = re.compile(r"\d+(?:[.,:/]\d+)*")
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9'’&.-]*[A-Za-z0-9]|[A-Za-z]")
_SENTENCE_START = re.compile(r"(?:^|[.!?:;]\s+|\n\s*(?:[-*+•]|\d+[.)])?\s*)$")
REPEAT_NGRAM = 4  # a 4-word sequence said this many times is a loop
REPEAT_LIMIT = 3
# Spelled-out numbers carry facts as much as digits ("two years' extra leave").
NUMBER_WORDS = {
    word: str(value)
    for value, word in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
        "fifteen sixteen seventeen eighteen nineteen twenty".split()
    )
} | {"thirty": "30", "forty": "40", "fifty": "50", "sixty": "60", "hundred": "100"}


def ungrounded_terms(text: str, sources: Iterable[str]) -> list[str]:
    """Numbers and capitalised names in `text` that occur in none of `sources`.

    A capitalised word opening a sentence is only checked when it looks like a name anyway
    (an acronym or CamelCase), since "Yes" or "Employees" there says nothing."""
    corpus = "\n".join(sources)
    lowered = corpus.lower()
    numbers_known = set(_NUMBER.findall(corpus))
    text = _CITATION.sub(" ", text)
    missing: list[str] = []
    for number in _NUMBER.findall(text):
        if number not in numbers_known and number.rstrip(".,") not in numbers_known:
            missing.append(number)
    for match in _WORD.finditer(text):
        word = match.group().rstrip(".")
        digits = NUMBER_WORDS.get(word.lower())
        if digits is not None:
            if digits not in numbers_known and not re.search(rf"\b{word.lower()}\b", lowered):
                missing.append(word)
            continue
        if not word[0].isupper() or word == "I":
            continue
        is_name_shaped = word.isupper() and len(word) > 1 or any(c.isupper() for c in word[1:])
        if _SENTENCE_START.search(text[: match.start()]) and not is_name_shaped:
            continue
        if word.lower() not in lowered:
            missing.append(word)
    return missing


def unsupported_share(text: str, sources: Iterable[str]) -> float:
    """The share of `text`'s content words (stemmed) that none of `sources` contains: a small
    model that drifts off the passages writes mostly words they do not have."""
    terms = content_terms(_CITATION.sub(" ", text))
    if not terms:
        return 0.0
    known = set(content_terms("\n".join(sources)))
    return sum(term not in known for term in terms) / len(terms)


def is_degenerate(text: str) -> bool:
    """Empty, citation-only, or looping output."""
    tokens = _CITATION.sub(" ", text).lower().split()
    if len(tokens) < 2:
        return True
    grams = Counter(tuple(tokens[i : i + REPEAT_NGRAM]) for i in range(len(tokens) - REPEAT_NGRAM + 1))
    if grams and max(grams.values()) >= REPEAT_LIMIT:
        return True
    # Long output reusing a handful of words is a loop with a longer period.
    return len(tokens) >= 30 and len(set(tokens)) / len(tokens) < 0.3
