"""The company's glossary: terms and what they mean, read from a YAML file and put into the
system prompt so the model reads company jargon the way employees mean it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import yaml

from bot.settings import SAMPLE_DOCS, LoreSettings
from knowledge.errors import ConfigurationError

# The bundled sample handbook ships its own glossary; the agent uses it when the sources are
# the bundled sample and no glossary file is configured.
SAMPLE_GLOSSARY = SAMPLE_DOCS / "glossary.yaml"


@dataclass(frozen=True)
class Glossary:
    """Terms in file order, each with its definition."""

    terms: tuple[tuple[str, str], ...] = ()

    def render(self) -> str:
        """The glossary as prompt text, one `term: definition` line per term."""
        return "\n".join(f"- {term}: {definition}" for term, definition in self.terms)

    def expand(self, text: str) -> str:
        """`text` with each glossary term it names followed by its definition in parentheses
        ("How much PTO…" → "How much PTO (paid time off)…"), so a question in company jargon
        can be matched by meaning against documents that spell the term out."""
        for term, definition in self.terms:
            text = re.sub(
                rf"(?<!\w){re.escape(term)}(?!\w)",
                partial(_followed_by, definition),
                text,
                count=1,
                flags=re.IGNORECASE,
            )
        return text

    def words(self) -> set[str]:
        """Every word of the glossary's terms and definitions (they may appear in an answer)."""
        return {word for pair in self.terms for part in pair for word in part.split()}


def _followed_by(definition: str, found: re.Match[str]) -> str:
    return f"{found.group(0)} ({definition})"


def load_glossary(path: Path) -> Glossary:
    """Read a glossary file: a mapping `term: definition`, or a list of `{term, definition}`."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise ConfigurationError(
            f"Glossary file {path} does not exist; fix agent.glossary_file or remove it."
        ) from error
    except yaml.YAMLError as error:
        raise ConfigurationError(f"Glossary file {path} is not valid YAML: {error}") from error
    if data is None:
        return Glossary()
    if isinstance(data, dict) and "terms" in data and isinstance(data["terms"], (list, dict)):
        data = data["terms"]
    pairs: list[tuple[str, str]] = []
    if isinstance(data, dict):
        pairs = [(str(term), str(definition)) for term, definition in data.items()]
    elif isinstance(data, list):
        for number, entry in enumerate(data, start=1):
            if not isinstance(entry, dict) or "term" not in entry or "definition" not in entry:
                raise ConfigurationError(f"Glossary file {path}: entry {number} needs `term` and `definition` keys.")
            pairs.append((str(entry["term"]), str(entry["definition"])))
    else:
        raise ConfigurationError(
            f"Glossary file {path} must hold a mapping of term: definition or a list of {{term, definition}} entries."
        )
    return Glossary(tuple((term.strip(), " ".join(text.split())) for term, text in pairs))


def glossary_for(settings: LoreSettings) -> Glossary | None:
    """The configured glossary; with none configured and the bundled sample handbook as the only
    source, the sample's own glossary."""
    if settings.agent.glossary_file is not None:
        return load_glossary(settings.agent.glossary_file)
    if _only_sample_docs(settings) and SAMPLE_GLOSSARY.is_file():
        return load_glossary(SAMPLE_GLOSSARY)
    return None


def _only_sample_docs(settings: LoreSettings) -> bool:
    if len(settings.sources) != 1:
        return False
    (source,) = settings.sources
    return source.kind == "folder" and Path(source.path).resolve() == SAMPLE_DOCS
