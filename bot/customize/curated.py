"""Curated question/answer files the company writes: FAQ and glossary, as YAML or CSV.

YAML: a list of `{question, answer}` (or a mapping with a `faq` list) is an FAQ; a mapping
`term: definition` (or `terms:` holding one, as the agent's glossary file) is a glossary.
CSV: a header with `question` and `answer` columns, or with `term` and `definition`.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bot.core.glossary import load_glossary
from knowledge.errors import ConfigurationError


@dataclass(frozen=True)
class CuratedPair:
    """A question and its answer as the company wrote them."""

    question: str
    answer: str
    kind: str  # curated_faq | curated_glossary
    file: str  # the file's name, which groups its pairs into one split


def load_curated(paths: Iterable[Path]) -> list[CuratedPair]:
    """Every pair in the given files, in file order; a bad file raises ConfigurationError."""
    pairs: list[CuratedPair] = []
    for path in paths:
        suffix = path.suffix.lower()
        if suffix in {".yaml", ".yml"}:
            pairs.extend(_from_yaml(path))
        elif suffix == ".csv":
            pairs.extend(_from_csv(path))
        else:
            raise ConfigurationError(f"Curated file {path} is neither YAML nor CSV: give a .yaml, .yml or .csv file.")
    return pairs


def _from_yaml(path: Path) -> list[CuratedPair]:
    data = _read_yaml(path)
    if isinstance(data, dict) and isinstance(data.get("faq"), list):
        data = data["faq"]
    if isinstance(data, list) and all(isinstance(i, dict) and "question" in i for i in data):
        return [_faq(path, item.get("question"), item.get("answer"), n) for n, item in enumerate(data, 1)]
    glossary = load_glossary(path)  # the agent's own glossary format, with its checks
    return [
        CuratedPair(f"What is {term}?", f"{term}: {definition}", "curated_glossary", path.name)
        for term, definition in glossary.terms
    ]


def _from_csv(path: Path) -> list[CuratedPair]:
    try:
        rows = list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8-sig"))))
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise ConfigurationError(f"Cannot read curated file {path}: {error}.") from error
    columns = {name.strip().lower() for name in (rows[0].keys() if rows else ())}
    normal = [{k.strip().lower(): (v or "").strip() for k, v in row.items() if k} for row in rows]
    if {"question", "answer"} <= columns:
        return [_faq(path, row["question"], row["answer"], n) for n, row in enumerate(normal, 2)]
    if {"term", "definition"} <= columns:
        return [
            CuratedPair(f"What is {row['term']}?", f"{row['term']}: {row['definition']}", "curated_glossary", path.name)
            for row in normal
            if row["term"] and row["definition"]
        ]
    raise ConfigurationError(f"Curated file {path} needs a header with `question,answer` or `term,definition` columns.")


def _faq(path: Path, question: Any, answer: Any, where: int) -> CuratedPair:
    if not isinstance(question, str) or not question.strip() or not isinstance(answer, str) or not answer.strip():
        raise ConfigurationError(
            f"Curated file {path}, entry {where}: both `question` and `answer` must be non-empty text."
        )
    return CuratedPair(" ".join(question.split()), " ".join(answer.split()), "curated_faq", path.name)


def _read_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigurationError(f"Cannot read curated file {path}: {error.strerror}.") from error
    except yaml.YAMLError as error:
        raise ConfigurationError(f"Curated file {path} is not valid YAML: {error}") from error
