"""The prompt: system instructions (persona, glossary, how to cite), the thread's earlier
turns, and the numbered passages with the question; fitted into the model's context window
by counting tokens, dropping the weakest passages first."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from bot.core.glossary import Glossary
from bot.model.base import ChatMessage
from bot.store.threads import Turn
from knowledge.types import Passage

NOT_COVERED = "not covered"
INSTRUCTIONS = (
    "Answer the employee's question using only the numbered passages below. "
    "Cite the passages you use by their number in square brackets, like [1]. "
    f'If the passages do not answer the question, reply only "{NOT_COVERED}". '
    "Be brief: one to three sentences."
)


@dataclass(frozen=True)
class Prompt:
    messages: tuple[ChatMessage, ...]
    passages: tuple[Passage, ...]  # the passages in the prompt, numbered from 1 in this order
    history: tuple[Turn, ...]
    tokens: int


def format_passage(number: int, passage: Passage) -> str:
    """`[n] Title > Heading` then the passage text."""
    label = " > ".join(part for part in (passage.title, passage.heading) if part) or passage.path
    return f"[{number}] {label}\n{passage.text.strip()}"


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
        messages.append(ChatMessage("user", turn.question))
        messages.append(ChatMessage("assistant", turn.answer))
    numbered = "\n\n".join(format_passage(n, p) for n, p in enumerate(passages, start=1))
    messages.append(ChatMessage("user", f"Passages:\n{numbered}\n\nQuestion: {question.strip()}"))
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
