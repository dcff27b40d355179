"""A model loaded on first use. When the agent answers with evidence alone (the active model's
own text is not trusted, see `bot.model.writing`), nothing needs the weights: `lore ask` and a
serving bot then never pay the model's start-up (tens of seconds on a first run, when the
bundled GGUF is converted) or its memory."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence

from bot.model.base import ChatMessage, GenerationSettings, Model


class LazyModel:
    """Implements `Model`; `load` runs once, on the first call that needs the weights.

    `name` and `adapter` answer without loading: they are what answers record."""

    def __init__(self, load: Callable[[], Model], name: str, adapter: str | None) -> None:
        self._load = load
        self._name = name
        self._adapter = adapter
        self._model: Model | None = None
        self._lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        return self._model is not None

    @property
    def name(self) -> str:
        return self._model.name if self._model is not None else self._name

    @property
    def adapter(self) -> str | None:
        return self._model.adapter if self._model is not None else self._adapter

    @property
    def context_window(self) -> int:
        return self.model().context_window

    def count_tokens(self, messages: Sequence[ChatMessage]) -> int:
        return self.model().count_tokens(messages)

    def stream(self, messages: Sequence[ChatMessage], settings: GenerationSettings | None = None) -> Iterator[str]:
        return self.model().stream(messages, settings)

    def use_adapter(self, name: str | None) -> None:
        """Answer with adapter `name` from now on. Choosing another adapter than the current
        one loads the model: only the loaded model can tell whether the adapter applies (it
        exists, and was trained on this base model), and whoever chose it means it to answer."""
        if self._model is None and name == self._adapter:
            return
        self.model().use_adapter(name)

    def model(self) -> Model:
        """The loaded model (loading it now if needed)."""
        with self._lock:
            if self._model is None:
                model = self._load()
                if model.adapter != self._adapter:
                    model.use_adapter(self._adapter)
                self._model = model
            return self._model

    def close(self) -> None:
        """Close the loaded model; a model never loaded holds nothing."""
        if self._model is not None:
            self._model.close()
