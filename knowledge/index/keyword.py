"""Turns what a person typed into the terms a keyword index searches for.

Terms are words (`\\w+`): punctuation and query syntax in the question (`"`, `&`, `|`, `!`,
`:*`, `NEAR(`) never reach an index as operators; each catalog also quotes or binds every
term itself (FTS5: `fts5_query`; PostgreSQL: bound parameters). Terms are OR-ed and ranked;
common English function words are dropped because in "how do I ..." questions they only add
noise."""

from __future__ import annotations

import re
from collections.abc import Sequence

_WORD = re.compile(r"\w+", re.UNICODE)

STOP_WORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before
    being below between both but by can could did do does doing down during each few for from
    further had has have having he her here hers herself him himself his how i if in into is it
    its itself just me might more most my myself no nor not now of off on once only or other our
    ours ourselves out over own same shall she should so some such than that the their theirs
    them themselves then there these they this those through to too under until up very was we
    were what when where which while who whom why will with would you your yours yourself
    yourselves get got need want please tell know""".split()
)


def keyword_terms(text: str) -> list[str]:
    """Distinct lowercase terms of `text` in order, stop words removed unless nothing else
    is left (a question made only of stop words still searches for them)."""
    words = list(dict.fromkeys(word.lower() for word in _WORD.findall(text)))
    content = [word for word in words if word not in STOP_WORDS]
    return content or words


def fts5_query(terms: Sequence[str]) -> str:
    """An FTS5 MATCH expression OR-ing `terms`, each quoted (a `"` inside is doubled), so FTS5
    reads every one as a word and never as an operator."""
    return " OR ".join('"' + term.replace('"', '""') + '"' for term in terms)
