"""A model for the Slack tests that wraps the real tiny model and can write slowly (to watch
streaming updates) or break mid-answer (to see the apology)."""

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

    def stream(self, messages: Sequence[ChatMessage], settings: GenerationSettings | None = None) -> Iterator[str]:
        return self.inner.stream(messages, settings)

    def use_adapter(self, name: str | None) -> None:
        self.inner.use_adapter(name)

    def close(self) -> None:
        """Nothing: `inner` belongs to whoever made it (often a model shared by many tests)."""


class PuppetModel(WrappedModel):
    """Writes like `inner`, but `delay` seconds before each piece (a big model on a small
    machine) and, when `fail_after` is set, fails after that many pieces the way a crashed
    backend does. Tests set the two attributes and `reset()` afterwards."""

    def __init__(self, inner: Model) -> None:
        super().__init__(inner)
        self.delay = 0.0
        self.fail_after: int | None = None

    def reset(self) -> None:
        self.delay, self.fail_after = 0.0, None

    def stream(self, messages: Sequence[ChatMessage], settings: GenerationSettings | None = None) -> Iterator[str]:
        for count, piece in enumerate(self.inner.stream(messages, settings)):
            if self.fail_after is not None and count >= self.fail_after:
                raise RuntimeError("CUDA error: the model backend fell over (test)")
            time.sleep(self.delay)
            yield piece
