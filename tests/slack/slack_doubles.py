"""Models for the Slack tests that wrap the real tiny model: one that writes slowly (to watch
streaming updates) and one that breaks mid-answer (to see the apology)."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence

from bot.model.base import ChatMessage, GenerationSettings, Model


class WrappedModel:
    """Delegates everything to `inner`; subclasses change how the answer streams."""

    def __init__(self, inner: Model) -> None:
        self.inner = inner

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def adapter(self) -> str | None:
        return self.inner.adapter

    @property
    def context_window(self) -> int:
        return self.inner.context_window

    def count_tokens(self, messages: Sequence[ChatMessage]) -> int:
        return self.inner.count_tokens(messages)

    def stream(
        self, messages: Sequence[ChatMessage], settings: GenerationSettings | None = None
    ) -> Iterator[str]:
        return self.inner.stream(messages, settings)

    def use_adapter(self, name: str | None) -> None:
        self.inner.use_adapter(name)


class SlowModel(WrappedModel):
    """Waits `delay` seconds before each piece, like a big model on a small machine."""

    def __init__(self, inner: Model, delay: float) -> None:
        super().__init__(inner)
        self.delay = delay

    def stream(
        self, messages: Sequence[ChatMessage], settings: GenerationSettings | None = None
    ) -> Iterator[str]:
        for piece in self.inner.stream(messages, settings):
            time.sleep(self.delay)
            yield piece


class BrokenModel(WrappedModel):
    """Writes `pieces` pieces, then fails the way a crashed backend does."""

    def __init__(self, inner: Model, pieces: int = 3) -> None:
        super().__init__(inner)
        self.pieces = pieces

    def stream(
        self, messages: Sequence[ChatMessage], settings: GenerationSettings | None = None
    ) -> Iterator[str]:
        for count, piece in enumerate(self.inner.stream(messages, settings)):
            if count >= self.pieces:
                raise RuntimeError("CUDA error: the model backend fell over (test)")
            yield piece
