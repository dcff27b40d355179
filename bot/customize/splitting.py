"""Deduplication and the train/validation/test split, by document: every example of a document
lands in the same split, so the test split asks about documents training never saw."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from bot.customize.examples import Example

SPLITS = ("train", "validation", "test")


@dataclass(frozen=True)
class Split:
    train: tuple[Example, ...]
    validation: tuple[Example, ...]
    test: tuple[Example, ...]

    def parts(self) -> dict[str, tuple[Example, ...]]:
        return {"train": self.train, "validation": self.validation, "test": self.test}


def deduplicate(examples: Sequence[Example]) -> list[Example]:
    """The first example of each question (case and spacing ignored); later ones are dropped,
    so no question appears twice, in one split or across two."""
    seen: set[str] = set()
    kept: list[Example] = []
    for example in examples:
        key = " ".join(example.question.lower().split())
        if key not in seen:
            seen.add(key)
            kept.append(example)
    return kept


def split_by_document(examples: Sequence[Example], validation_share: float = 0.1, test_share: float = 0.1) -> Split:
    """Documents ordered by the hash of their key fill test first, then validation, then train
    (at least one document each when there are three or more): the same documents always
    split the same way, whatever order the examples come in."""
    documents = sorted({e.document for e in examples}, key=_hash)
    count = len(documents)
    n_test = max(1, round(count * test_share)) if count >= 3 else 0
    n_validation = max(1, round(count * validation_share)) if count >= 3 else 0
    test = set(documents[:n_test])
    validation = set(documents[n_test : n_test + n_validation])
    return Split(
        train=tuple(e for e in examples if e.document not in test | validation),
        validation=tuple(e for e in examples if e.document in validation),
        test=tuple(e for e in examples if e.document in test),
    )


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()
