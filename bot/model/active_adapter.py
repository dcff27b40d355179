"""Following promotions in a running bot, without a restart.

`lore customize promote` and `rollback` (and the scheduled retraining) run in other processes,
on other machines too, and change only the registry's marker (`ActiveMarker`: the ACTIVE file,
or a row of the shared PostgreSQL database). `FollowActiveAdapter` wraps the serving model
and, before each generation, lets an `ActiveAdapterWatcher` read the marker (a few bytes, or
one primary-key read) and compare it with what it read last time: a promotion answers from the very next question on,
with no polling thread and no measurable cost while nothing changes. Comparing the content,
not the file's time stamp, also catches two promotions within one time-stamp tick.

Only the local backend follows the marker. The openai backend's adapter is a model name on the
server, and vLLM serves only the adapters it was started with (`--lora-modules`) or was told to
load; switching the name when the marker changes would turn every answer into a "model not
found" error until an operator acts, so there the operator switches (`model.adapter`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence

from bot.errors import LoreError
from bot.model import BACKENDS
from bot.model.adapters import AdapterRegistry
from bot.model.base import ChatMessage, GenerationSettings, Model
from bot.settings import ModelSettings

log = logging.getLogger(__name__)


class ActiveAdapterWatcher:
    """Switches `model` to the registry's promoted adapter whenever the ACTIVE marker changes.

    Only a change of the marker switches: an adapter chosen explicitly with `use_adapter`
    (say, to measure it) stays until the next promotion or rollback."""

    def __init__(self, registry: AdapterRegistry, model: Model) -> None:
        self._registry = registry
        self._model = model
        # The marker as the model was loaded (`load_model` applies it when nothing is pinned).
        self._seen = model.adapter
        self._lock = threading.Lock()

    def check(self) -> None:
        """Apply the promoted adapter if the marker changed since the last check.

        An adapter that cannot be applied (deleted, damaged, trained on another base model) is
        logged once and the current one keeps answering: a bad promotion never stops the bot."""
        if self._registry.active() == self._seen:
            return
        with self._lock:  # concurrent answers: one of them switches, the others wait for it
            wanted = self._registry.active()  # again: another thread may have switched meanwhile
            if wanted == self._seen:
                return
            self._seen = wanted
            previous = self._model.adapter
            if wanted == previous:
                return
            try:
                self._model.use_adapter(wanted)
            except LoreError as error:
                log.error(
                    "Adapter %s was promoted but cannot be applied; still answering with %s: %s",
                    wanted,
                    previous or "the base model",
                    error,
                )
                return
            log.info(
                "Promotion noticed: answering with %s (was %s)",
                wanted or "the base model",
                previous or "the base model",
            )


class FollowActiveAdapter:
    """A `Model` answering with whichever adapter is promoted now: the wrapped model, switched
    by an `ActiveAdapterWatcher` before each generation."""

    def __init__(self, model: Model, registry: AdapterRegistry) -> None:
        self._model = model
        self._watcher = ActiveAdapterWatcher(registry, model)

    @property
    def name(self) -> str:
        """The base model's name."""
        return self._model.name

    @property
    def adapter(self) -> str | None:
        """The adapter that answers now, after following a promotion made since the last look
        (the agent asks before each answer whether this model writes)."""
        self._watcher.check()
        return self._model.adapter

    @property
    def loaded(self) -> bool:
        """Whether the wrapped model holds its weights yet (a lazy one loads on first use)."""
        return bool(getattr(self._model, "loaded", True))

    @property
    def context_window(self) -> int:
        """The wrapped model's context window."""
        return self._model.context_window

    def count_tokens(self, messages: Sequence[ChatMessage]) -> int:
        """The wrapped model's count."""
        return self._model.count_tokens(messages)

    def stream(self, messages: Sequence[ChatMessage], settings: GenerationSettings | None = None) -> Iterator[str]:
        """Switch to the promoted adapter if it changed, then stream the wrapped model's answer."""
        self._watcher.check()
        return self._model.stream(messages, settings)

    def use_adapter(self, name: str | None) -> None:
        """Answer with `name` until the ACTIVE marker next changes."""
        self._model.use_adapter(name)

    def close(self) -> None:
        """Close the wrapped model."""
        self._model.close()


def follow_promotions(model: Model, settings: ModelSettings, registry: AdapterRegistry) -> Model:
    """`model`, made to follow promotions in `registry` (the local backend with no adapter pinned
    in `model.adapter`); otherwise `model` itself, with a log line saying how to switch."""
    if settings.adapter is not None:
        log.info(
            "model.adapter pins %s: promotions take effect once it is changed and the bot restarted",
            settings.adapter,
        )
        return model
    if not BACKENDS[settings.backend].uses_adapter_registry:
        log.info(
            "The %s backend answers as %s: after a promotion, serve the adapter on the endpoint "
            "(vLLM: --enable-lora --lora-modules NAME=PATH) and set model.adapter to its name",
            settings.backend,
            model.adapter or model.name,
        )
        return model
    return FollowActiveAdapter(model, registry)
