"""Word-level text helpers shared by follow-up resolution, evidence selection and the
evidence-strength check: tokenizing, light stemming, stop words, sentence splitting."""

from __future__ import annotations

import re

STOP_WORDS = frozenset(
    """a about above after again all also am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from further
    get gets got had has have having he her here hers him his how i if in into is it its itself
    just me more most my no nor not now of off on once only or other our ours out over own same
    she should so some such than that the their theirs them then there these they this those
    through to too under until up very was we were what when where which while who whom why will
    with would you your yours please tell know need want use used using may might must shall
    lore company""".split()
)

_WORD = re.compile(r"[a-z0-9]+(?:['’][a-z]+)?")
# A sentence ends at . ! or ? followed by space and something that can start a sentence.
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]?\s+(?=[\"'(\[]?[A-Z0-9])")
_BULLET = re.compile(r"^\s*(?:[-*+•]|\d+[.)]|#+)\s+")


def words(text: str) -> list[str]:
    """Lower-cased word tokens."""
    return _WORD.findall(text.lower())


def stem(word: str) -> str:
    """A light suffix-stripping stem, enough to match plurals and simple verb forms."""
    for suffix, replacement in (("ies", "y"), ("ing", ""), ("ed", ""), ("es", ""), ("s", "")):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: len(word) - len(suffix)] + replacement
    return word


def content_words(text: str) -> list[str]:
    """The words that carry meaning (no stop words, contractions cut off), in order."""
    bare = (word.replace("’", "'").split("'")[0] for word in words(text))
    return [word for word in bare if word not in STOP_WORDS and len(word) > 1]


def content_terms(text: str) -> list[str]:
    """Stems of the words that carry meaning, in order."""
    return [stem(word) for word in content_words(text)]


def split_sentences(text: str) -> list[str]:
    """Sentences and list items of `text`, bullet marks removed. A sentence hard-wrapped over
    several lines is joined with single spaces, so it is verbatim up to white space."""
    sentences: list[str] = []
    for block in _blocks(text):
        sentences.extend(part.strip() for part in _SENTENCE_END.split(block) if part.strip())
    return sentences


def _blocks(text: str) -> list[str]:
    """Paragraphs, list items and headings, each on one line: a wrapped line continues the
    block above it; a blank line, a bullet, a heading or a table row starts a new one."""
    blocks: list[str] = []
    current: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        starts_block = not stripped or _BULLET.match(line) is not None or stripped.startswith("|")
        if starts_block and current:
            blocks.append(" ".join(current))
            current = []
        if stripped:
            current.append(_BULLET.sub("", line).strip())
            if stripped.startswith(("#", "|")):  # a heading or table row stands alone
                blocks.append(" ".join(current))
                current = []
    if current:
        blocks.append(" ".join(current))
    return blocks
