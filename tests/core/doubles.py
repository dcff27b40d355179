"""Test doubles for the agent's collaborators: a model that replies with a scripted text and a
retriever that returns given passages. They let the agent's own logic (citations, evidence,
grounding, fallback, memory) be checked exactly; tests/core/test_agent_stack.py runs the real
index and a real (tiny) model."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence

from bot.model.base import ChatMessage, GenerationSettings
from knowledge.types import Passage, SearchFilters


class ScriptedModel:
    """Streams `reply` word by word; counts one token per word plus four per message."""

    def __init__(self, reply: str, context_window: int = 4096, adapter: str | None = None) -> None:
        self.reply = reply
        self._context_window = context_window
        self._adapter = adapter
        self.prompts: list[list[ChatMessage]] = []
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return "scripted"

    @property
    def adapter(self) -> str | None:
        return self._adapter

    @property
    def context_window(self) -> int:
        return self._context_window

    def count_tokens(self, messages: Sequence[ChatMessage]) -> int:
        return sum(len(m.content.split()) + 4 for m in messages)

    def stream(self, messages: Sequence[ChatMessage], settings: GenerationSettings | None = None) -> Iterator[str]:
        with self._lock:
            self.prompts.append(list(messages))
        words = self.reply.split(" ")
        for number, word in enumerate(words):
            yield word if number == 0 else " " + word

    def use_adapter(self, name: str | None) -> None:
        self._adapter = name

    def close(self) -> None:
        """Nothing to release."""


class ListRetriever:
    """Returns its passages (at most k) for every query, recording what it was asked."""

    def __init__(self, passages: Sequence[Passage]) -> None:
        self.passages = list(passages)
        self.queries: list[tuple[str, SearchFilters | None]] = []

    def search(
        self,
        query: str,
        k: int = 5,
        filters: SearchFilters | None = None,
        *,
        mode: str = "hybrid",
        max_per_document: int | None = None,
    ) -> list[Passage]:
        if mode == "keyword":
            # Like the real keyword index: passages containing the word (or its plural).
            word = query.lower()
            return [p for p in self.passages if word in p.text.lower() or word.rstrip("s") in p.text.lower()][:k]
        self.queries.append((query, filters))
        return self.passages[:k]
