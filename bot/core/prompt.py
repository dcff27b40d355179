"""The prompt: system instructions (persona, glossary, how to cite), the thread's earlier
turns, and the numbered passages with the question; fitted into the model's context window
by counting tokens, dropping the weakest passages first.

Passage text is written by whoever may edit a document, so it is quoted before it goes in: a
line that would read as one of the prompt's own delimiters (a `[n] Title` passage header, a
`Question:` or `Passages:` label, a `user:`-style role line) is set off with "> ", and chat
template control tokens (`<|im_start|>`, `</s>`, …) are removed from everything but the
persona, so no document can add a passage, a question or a conversation turn of its own."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from bot.core.glossary import Glossary
from bot.model.base import ChatMessage
from bot.types import Turn
from knowledge.types import Passage

NOT_COVERED = "not covered"
INSTRUCTIONS = (
    "Answer the employee's question using only the numbered passages below. "
    "Cite the passages you use by their number in square brackets, like [1]. "
    f'If the passages do not answer the question, reply only "{NOT_COVERED}". '
    "Be brief: one to three sentences."
)


# A line that would read as a delimiter of the prompt: a passage header or a label.
_DELIMITER_LINE = re.compile(
    r"\s*(?:\[\s*\d+(?:\s*,\s*\d+)*\s*\]|(?:passages|question|answer|system|user|assistant)\s*:)",
    re.IGNORECASE,
)
# Chat-template control tokens (ChatML, Llama 3, Phi: <|…|>; DeepSeek: <｜…｜>; Llama 2 /
# Mistral: <s>, </s>).
_CONTROL_TOKEN = re.compile(r"<[|｜][^|｜<>\n]{0,40}[|｜]>|</?s>", re.IGNORECASE)
# Characters some tokenizers and readers take as line breaks, though `^` does not.
_LINE_BREAKS = str.maketrans({"\r": "\n", "\v": "\n", "\f": "\n", "\x85": "\n", "\u2028": "\n", "\u2029": "\n"})


@dataclass(frozen=True)
class Prompt:
    messages: tuple[ChatMessage, ...]
    passages: tuple[Passage, ...]  # the passages in the prompt, numbered from 1 in this order
    history: tuple[Turn, ...]
    tokens: int


def format_passage(number: int, passage: Passage) -> str:
    """`[n] Title > Heading` then the passage text, quoted (`quote_passage_text`)."""
    label = " > ".join(part for part in (passage.title, passage.heading) if part) or passage.path
    label = " ".join(strip_control_tokens(label).split())  # one line, whatever the title holds
    return f"[{number}] {label}\n{quote_passage_text(passage.text.strip())}"


def quote_passage_text(text: str) -> str:
    """`text` unable to pose as the prompt around it: control tokens removed and delimiter-like
    lines set off with "> " (the model still reads them, as quoted text). A line is compared as
    a reader sees it: full-width or otherwise compatible characters folded ("［2］" is "[2]"),
    invisible ones (zero-width spaces) ignored."""
    text = strip_control_tokens(text.replace("\r\n", "\n").translate(_LINE_BREAKS))
    return "\n".join(f"> {line}" if _DELIMITER_LINE.match(_as_read(line)) else line for line in text.split("\n"))


def _as_read(line: str) -> str:
    folded = unicodedata.normalize("NFKC", line)
    return "".join(c for c in folded if unicodedata.category(c) != "Cf")


def strip_control_tokens(text: str) -> str:
    """`text` without chat-template control tokens (which would open a new turn)."""
    return _CONTROL_TOKEN.sub("", text)


def build_messages(
    question: str,
    passages: Sequence[Passage],
    history: Sequence[Turn],
    persona: str,
    glossary: Glossary | None = None,
) -> list[ChatMessage]:
    """The chat messages for one answer."""
    system = f"{persona.strip()}\n{INSTRUCTIONS}"
    if glossary is not None and glossary.terms:
        system += f"\n\nCompany glossary:\n{glossary.render()}"
    messages = [ChatMessage("system", system)]
    for turn in history:
        messages.append(ChatMessage("user", strip_control_tokens(turn.question)))
        messages.append(ChatMessage("assistant", strip_control_tokens(turn.answer)))
    numbered = "\n\n".join(format_passage(n, p) for n, p in enumerate(passages, start=1))
    asked = strip_control_tokens(question.strip())
    messages.append(ChatMessage("user", f"Passages:\n{numbered}\n\nQuestion: {asked}"))
    return messages


def prompt_budget(max_prompt_tokens: int, context_window: int, max_new_tokens: int) -> int:
    """The tokens a prompt may take: `max_prompt_tokens`, less when the context window must
    also hold `max_new_tokens` of answer. The agent and the training set both use it, so a
    model is trained on prompts of the length it is asked with."""
    return min(max_prompt_tokens, context_window - max_new_tokens)


def fit_prompt(
    question: str,
    passages: Sequence[Passage],
    history: Sequence[Turn],
    persona: str,
    glossary: Glossary | None,
    count_tokens: Callable[[Sequence[ChatMessage]], int],
    budget: int,
) -> Prompt:
    """The largest prompt within `budget` tokens: weakest passages (the last) go first, then
    the oldest turns of history; a single remaining passage is cut to its first part."""
    passages = list(passages)
    history = list(history)
    while True:
        messages = build_messages(question, passages, history, persona, glossary)
        tokens = count_tokens(messages)
        if tokens <= budget:
            return Prompt(tuple(messages), tuple(passages), tuple(history), tokens)
        if len(passages) > 1:
            passages.pop()
        elif history:
            history.pop(0)
        elif passages and len(passages[0].text) > 200:
            # Keep the opening of the best passage: headings and first sentences carry most.
            cut = passages[0]
            over = tokens - budget
            keep = max(200, len(cut.text) - max(over * 4, len(cut.text) // 4))
            passages = [replace(cut, text=cut.text[:keep])]
        else:
            return Prompt(tuple(messages), tuple(passages), tuple(history), tokens)
