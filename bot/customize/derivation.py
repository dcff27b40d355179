"""Question/answer pairs derived offline from a chunk's own structure: deterministic, no network.

Each pair is a question an employee might ask and the sentences of the chunk that answer it,
verbatim, so that a trained model learns to answer by quoting what its passages say. Kinds:
`faq` (Q:/A: pairs, headings that are questions), `heading` (a heading or a paragraph's lead-in
label turned into a question, answered by the first sentences under it), `definition`
("X is ..." sentences), `table_row` (a row of a table: one of its cells, asked about by the row's
first cell), `key_value` (`Term: definition` lines, as in a glossary file).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass

CELL_SEPARATOR = " | "  # how knowledge/loaders/tables.py joins a row's cells
MAX_ANSWER_CHARS = 320
ANSWER_SENTENCES = 2
MAX_ROWS_PER_CHUNK = 6
MAX_DEFINITIONS_PER_CHUNK = 3

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])")
_MARKUP = re.compile(r"\*\*|__|`|^#+\s*|^\s*(?:[-*+]|\d+[.)])\s+", re.MULTILINE)
_FAQ = re.compile(
    r"(?:^|\n)\s*(?:\*\*)?(?:Q|Question)\s*[:.](?:\*\*)?\s*(?P<q>[^\n]+?\?)\s*\n+"
    r"\s*(?:\*\*)?(?:A|Answer)\s*[:.](?:\*\*)?\s*(?P<a>.+?)(?=\n\s*\n|\n\s*(?:\*\*)?(?:Q|Question)\s*[:.]|\Z)",
    re.DOTALL,
)
_DEFINITION = re.compile(
    r"^(?:The |An? )?(?P<term>[A-Z][\w'&-]*(?: [\w'&-]+){0,3}) (?P<verb>is|are|means|refers to) "
    r"(?P<rest>.{12,})$"
)
_KEY_VALUE = re.compile(r"^\s*\"?(?P<key>[A-Z#][\w #'&-]{1,40}?)\"?:\s+(?P<value>\S.{8,})$")
_LEAD_IN = re.compile(r"^(?P<label>[A-Z][\w'&/ -]{2,40})\.\s+(?P<body>[A-Z].{20,})$", re.DOTALL)
# Headings that say nothing about their content get the document's title for context.
_GENERIC = {"overview", "introduction", "summary", "details", "general", "notes", "other", "faq"}
# "This folder is ...", "At Tidewell reviews are ...", "Once a release is ...", "Different specs
# are ...": not a term being defined.
_NOT_TERMS = {
    "this",
    "these",
    "that",
    "those",
    "it",
    "they",
    "there",
    "here",
    "we",
    "you",
    "our",
    "your",
    "at",
    "in",
    "on",
    "for",
    "every",
    "all",
    "each",
    "some",
    "most",
    "if",
    "when",
    "once",
    "while",
    "whilst",
    "although",
    "because",
    "since",
    "unless",
    "until",
    "after",
    "before",
    "as",
    "so",
    "then",
    "no",
    "both",
    "either",
    "neither",
    "such",
    "other",
    "many",
    "few",
    "more",
    "less",
    "same",
    "different",
    "various",
    "several",
    "certain",
    "following",
}
# A clause ("Select all tickets that", "Determining whether a PO", "Technical growth alone") is
# not a term either, wherever the word stands.
_CLAUSE_WORDS = {"that", "which", "who", "whom", "whose", "whether", "if", "when", "alone", "not", "also", "only"}
# Labels of a line rather than terms ("Note: ...", "Step 2: ...", "Rule #4: ...").
_LABELS = {
    "note",
    "notes",
    "tip",
    "tips",
    "warning",
    "important",
    "caution",
    "reminder",
    "update",
    "source",
    "sources",
    "example",
    "examples",
    "step",
    "rule",
    "option",
    "phase",
    "stage",
    "part",
    "question",
    "answer",
    "q",
    "a",
    "tl;dr",
    "tldr",
    "goal",
    "goals",
    "context",
    "background",
    "related",
    "see also",
    "continue reading",
    "read more",
    "learn more",
    "more info",
    "pro tip",
    "edit",
    "todo",
    "to do",
    "important note",
    "sample",
    "walkthrough",
}
_NUMBERED_LABEL = re.compile(r"^(?P<word>[A-Za-z ]+?)\s*#?\d+[a-z]?$")
# Headings over examples of how (not) to do something name no topic: "Yes", "No", "Do", ...
_EXAMPLE_HEADINGS = {
    "yes",
    "no",
    "do",
    "don't",
    "don’t",
    "dos",
    "don'ts",
    "good",
    "bad",
    "correct",
    "incorrect",
    "right",
    "wrong",
    "example",
    "examples",
    "before",
    "after",
}
MAX_KEY_WORDS = 4  # "True ownership revolves around one thing:" is a sentence, not a key
MAX_TERM_WORDS = 4
_HTML = re.compile(r"<[^>]+>|&[a-z]+;|&#\d+;")
_EMPTY_VALUES = {"", "-", "–", "—", "n/a", "na", "none", "tbd", "tba", "?", "x", "✓", "✔", "✗"}
_QUESTION_WORDS = {"what", "who", "where", "when", "how", "why", "which", "can", "do", "does", "is", "are", "should"}
_VERBS = {"is", "are", "was", "were", "be", "has", "have"}


@dataclass(frozen=True)
class QAPair:
    """A question and the answer sentences (verbatim from the chunk)."""

    question: str
    answer: str
    kind: str  # faq | heading | definition | table_row | key_value


def derive_pairs(title: str, heading: str, text: str) -> list[QAPair]:
    """All pairs one chunk yields (heading path as `A > B`, text as indexed), in text order."""
    pairs: list[QAPair] = []
    pairs.extend(_faq_pairs(text))
    if text.strip() and CELL_SEPARATOR in text.strip().splitlines()[0]:
        pairs.extend(_table_pairs(text))
        return _unique(pairs)
    key_values = list(_key_value_pairs(text))
    if not key_values:  # a glossary's section heading ("terms") asks nothing a person would
        pairs.extend(_heading_pairs(title, heading, text))
    pairs.extend(_lead_in_pairs(title, text))
    pairs.extend(_definition_pairs(text))
    pairs.extend(key_values)
    return _unique(pairs)


def sentences(text: str) -> list[str]:
    """The text's sentences with Markdown markup removed and whitespace collapsed."""
    plain = _MARKUP.sub("", text)
    paragraphs = [" ".join(part.split()) for part in re.split(r"\n\s*\n", plain)]
    found: list[str] = []
    for paragraph in paragraphs:
        found.extend(s.strip() for s in _SENTENCE_END.split(paragraph) if s.strip())
    return found


def _answer_from(text: str) -> str:
    chosen: list[str] = []
    for sentence in sentences(text):
        if len(sentence) < 15 or sentence[-1] not in ".!?":
            continue  # headings, labels and list fragments do not answer anything alone
        if chosen and len(" ".join([*chosen, sentence])) > MAX_ANSWER_CHARS:
            break
        chosen.append(sentence)
        if len(chosen) == ANSWER_SENTENCES:
            break
    return " ".join(chosen)[: MAX_ANSWER_CHARS * 2]


def _faq_pairs(text: str) -> Iterator[QAPair]:
    for match in _FAQ.finditer(text):
        answer = " ".join(_MARKUP.sub("", match.group("a")).split())
        if answer:
            yield QAPair(" ".join(match.group("q").split()), answer, "faq")


def _heading_pairs(title: str, heading: str, text: str) -> Iterator[QAPair]:
    parts = [part.strip() for part in heading.split(" > ") if part.strip()]
    if not parts:
        return
    topic = _plain(parts[-1])
    answer = _answer_from(text)
    if not answer or not topic or topic.lower() in _EXAMPLE_HEADINGS:
        return
    if topic.endswith("?") or topic.split()[0].lower() in _QUESTION_WORDS:
        question = topic if topic.endswith("?") else f"{topic[0].upper()}{topic[1:]}?"
        yield QAPair(question, answer, "faq")
        return
    context = parts[-2] if len(parts) > 1 else title
    yield QAPair(_question_about(topic, context), answer, "heading")


def _lead_in_pairs(title: str, text: str) -> Iterator[QAPair]:
    # Plain-text policies often start paragraphs with a label sentence: "Hybrid work. You may..."
    for paragraph in re.split(r"\n\s*\n", text):
        match = _LEAD_IN.match(" ".join(paragraph.split()))
        label = match.group("label").split() if match else []
        # A label names a topic ("Hybrid work."); a short sentence ("Shifts are one week long.")
        # or an example's verdict ("Yes. Add your repositories ...") is not one.
        if (
            match
            and len(label) <= 5
            and not _VERBS & {word.lower() for word in label}
            and match.group("label").lower() not in _EXAMPLE_HEADINGS
        ):
            answer = _answer_from(match.group("body"))
            if answer:
                yield QAPair(_question_about(match.group("label"), title), answer, "heading")


def _definition_pairs(text: str) -> Iterator[QAPair]:
    count = 0
    for sentence in sentences(text):
        match = _DEFINITION.match(sentence)
        if not match or not sentence.endswith(".") or not _is_term(match.group("term"), sentence):
            continue
        verb = "are" if match.group("verb") == "are" else "is"
        yield QAPair(f"What {verb} {match.group('term')}?", sentence, "definition")
        count += 1
        if count == MAX_DEFINITIONS_PER_CHUNK:
            return


def _key_value_pairs(text: str) -> Iterator[QAPair]:
    for line in text.splitlines():
        match = _KEY_VALUE.match(line)
        if not match:
            continue
        key, value = match.group("key").strip(), match.group("value").strip().strip('"')
        if len(value.split()) < 3 or key.lower() in _GENERIC or _is_label(key):
            continue  # "owner: people-team@..." metadata, "Note: ..." a label, not a definition
        question = f"What is {key} used for?" if key.startswith("#") else f"What is {key}?"
        yield QAPair(question, f"{key}: {value}", "key_value")


def _table_pairs(text: str) -> Iterator[QAPair]:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    header = [_plain(cell) for cell in lines[0].split(CELL_SEPARATOR)]
    for line in lines[1 : 1 + MAX_ROWS_PER_CHUNK]:
        cells = [_plain(cell) for cell in line.split(CELL_SEPARATOR)]
        if len(cells) < 2 or not cells[0]:
            continue
        # One column per row, chosen by hash, so a table yields varied questions, not a grid.
        # A cell saying nothing ("N/A", "-", a tick) answers nothing.
        columns = [
            j for j in range(1, min(len(cells), len(header))) if cells[j].lower() not in _EMPTY_VALUES and header[j]
        ]
        if not columns:
            continue
        column = columns[_stable(line) % len(columns)]
        name, value = header[column], cells[column].rstrip(".")
        yield QAPair(
            f"What is the {name.lower()} of {cells[0]}?",
            f"The {name.lower()} of {cells[0]} is {value}.",
            "table_row",
        )


_TEMPLATES = (
    "What is the policy on {topic}?",
    "What should I know about {topic}?",
    "How does {topic} work here?",
    "What are the rules for {topic}?",
)


def _question_about(topic: str, context: str) -> str:
    phrase = _lower_first(topic.rstrip(":. "))
    if phrase.lower() in _GENERIC or len(phrase.split()) == 1 and context:
        phrase = f"{phrase} ({context})" if phrase.lower() not in _GENERIC else _lower_first(context)
    if topic.split()[0].lower().endswith("ing"):  # "Requesting time off" is something one does
        return f"How does {phrase} work?"
    templates = [t for t in _TEMPLATES if not (phrase.endswith("work") and "work" in t)]
    return templates[_stable(topic + context) % len(templates)].format(topic=phrase)


def _is_term(term: str, sentence: str) -> bool:
    words = term.lower().split()
    if words[0] in {"the", "a", "an"} and len(words) > 1:
        words = words[1:]
    return (
        sentence.split()[0].lower() not in _NOT_TERMS
        and words[0] not in _NOT_TERMS
        and len(words) <= MAX_TERM_WORDS
        and not _CLAUSE_WORDS & set(words)
    )


def _is_label(key: str) -> bool:
    lowered = key.lower().strip()
    numbered = _NUMBERED_LABEL.match(lowered)
    return (
        lowered in _LABELS
        or bool(numbered and numbered.group("word").strip() in _LABELS)
        or len(lowered.split()) > MAX_KEY_WORDS
    )


def _plain(text: str) -> str:
    """A heading or table cell without Markdown emphasis, HTML tags or entities."""
    return " ".join(_HTML.sub(" ", _MARKUP.sub("", text)).split())


def _lower_first(text: str) -> str:
    # "Sick leave" → "sick leave", but names ("Tidewell Days", "Anchor") and acronyms stay.
    words = text.split()
    if len(words) > 1 and words[0][1:].islower() and all(w[:1].islower() for w in words[1:]):
        return text[0].lower() + text[1:]
    return text


def _stable(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big")


def _unique(pairs: list[QAPair]) -> list[QAPair]:
    seen: set[str] = set()
    kept: list[QAPair] = []
    for pair in pairs:
        key = pair.question.lower()
        if key not in seen and pair.answer:
            seen.add(key)
            kept.append(pair)
    return kept
