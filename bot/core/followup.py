"""Resolving a follow-up question against the thread it was asked in, for retrieval.

A deterministic rewrite: when the thread has an earlier turn and the new question looks
elliptic ("and for contractors?", "what about Berlin?") or leans on a pronoun ("how long does
it take?"), retrieval searches for the previous question and the follow-up together. A
self-contained question is searched as it is. The model still sees the whole thread history
in its prompt; this only decides what retrieval looks for."""

from __future__ import annotations

from collections.abc import Sequence

from bot.core.text import content_terms, words
from bot.types import Turn

SHORT_QUESTION_TERMS = 2  # this many content words or fewer: too little to search on its own
_OPENERS = ("and ", "also ", "what about", "how about", "same for", "or ", "but ", "then ")
_PRONOUNS = frozenset("it its it's they them their theirs this that these those there he she his her one ones".split())


def resolve_followup(question: str, history: Sequence[Turn]) -> str:
    """The text to search for: `question`, or the previous question plus it when it is a
    follow-up (see the module docstring)."""
    if not history:
        return question
    lowered = question.strip().lower()
    elliptic = lowered.startswith(_OPENERS) or len(content_terms(question)) <= SHORT_QUESTION_TERMS
    leans_on_pronoun = any(word in _PRONOUNS for word in words(question))
    if not (elliptic or leans_on_pronoun):
        return question
    return f"{history[-1].question.strip()} {question.strip()}"
