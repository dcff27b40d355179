"""The one interface every model backend implements."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol


@dataclass(frozen=True)
class ChatMessage:
    role: Literal["system", "user", "assistant"]
    content: str


@dataclass(frozen=True)
class GenerationSettings:
    max_new_tokens: int = 200
    temperature: float = 0.0  # 0 = greedy
    repetition_penalty: float = 1.2
    # Stop when the last tokens repeat an n-gram already generated this many times (loop guard).
    stop_on_repeated_ngram: int = 8
    stop: tuple[str, ...] = ()


class Model(Protocol):
    """A chat model: a base model, optionally with a LoRA adapter applied."""

    @property
    def name(self) -> str:
        """The base model's name (folder name or endpoint model)."""

    @property
    def adapter(self) -> str | None:
        """The adapter answering now, or None for the bare base model."""

    @property
    def context_window(self) -> int:
        """Tokens the model can attend to, prompt and answer together."""

    def count_tokens(self, messages: Sequence[ChatMessage]) -> int:
        """Tokens the chat-formatted prompt takes."""

    def stream(self, messages: Sequence[ChatMessage], settings: GenerationSettings | None = None) -> Iterator[str]:
        """Yield the answer's text in pieces as it is generated."""

    def use_adapter(self, name: str | None) -> None:
        """Answer with adapter `name` from now on (None = base model), without a restart."""

    def close(self) -> None:
        """Release what the model holds (worker thread, connections); safe to call twice."""
