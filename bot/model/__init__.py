"""Model runtime: one `Model` interface, a local transformers backend and an OpenAI-compatible one."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from bot.model.adapters import AdapterRegistry
from bot.model.base import ChatMessage, GenerationSettings, Model
from bot.model.lazy import LazyModel
from bot.settings import ModelSettings

__all__ = [
    "BACKENDS",
    "AdapterRegistry",
    "Backend",
    "ChatMessage",
    "GenerationSettings",
    "Model",
    "generation_defaults",
    "lazy_model",
    "load_model",
]


def generation_defaults(settings: ModelSettings) -> GenerationSettings:
    """The generation settings a model uses when a request brings none."""
    return GenerationSettings(
        max_new_tokens=settings.max_new_tokens,
        temperature=settings.temperature,
        repetition_penalty=settings.repetition_penalty,
    )


@dataclass(frozen=True)
class Backend:
    """One way to run the model (`model.backend`)."""

    load: Callable[[ModelSettings, Path, AdapterRegistry], Model]
    # Whether its adapters come from Lore's registry (`<home>/adapters/`, promoted with
    # `lore customize promote`), rather than being model names on a server.
    uses_adapter_registry: bool
    # Whether Lore loads the base model's weights itself, so their folder (config, tokenizer)
    # is always at hand (`model.base_model` or the bundled model), rather than a server
    # running them (then only `model.base_model` names the folder, and customization needs it).
    loads_weights: bool


def _load_local(settings: ModelSettings, home: Path, adapters: AdapterRegistry) -> Model:
    """The base model (`settings.base_model` or the bundled SmolLM2, cached under
    `<home>/models/` on first use) with `settings.adapter`, else the adapter promoted in
    `adapters`."""
    from bot.model.local import LocalModel
    from bot.model.weights import base_model_name, resolve_base_model

    return LocalModel(
        resolve_base_model(settings, home),
        name=base_model_name(settings),
        adapters=adapters,
        adapter=settings.adapter if settings.adapter is not None else adapters.active(),
        device=settings.device,
        queue_size=settings.queue_size,
        defaults=generation_defaults(settings),
        cpu_threads=settings.cpu_threads,
    )


def _load_openai(settings: ModelSettings, home: Path, adapters: AdapterRegistry) -> Model:
    """The endpoint `settings.openai_base_url`, answering as `settings.adapter` when set,
    else `settings.openai_model`."""
    from bot.model.openai_backend import OpenAIModel
    from bot.model.tokens import ChatTokenizer
    from bot.model.weights import check_model_folder

    tokenizer = (
        ChatTokenizer.from_folder(check_model_folder(settings.base_model)) if settings.base_model is not None else None
    )
    return OpenAIModel(
        settings.openai_base_url,
        settings.openai_model,
        api_key=settings.openai_api_key,
        adapter=settings.adapter,
        timeout_seconds=settings.request_timeout_seconds,
        queue_size=settings.queue_size,
        defaults=generation_defaults(settings),
        tokenizer=tokenizer,
    )


# Every `model.backend`, by name. Each loader imports its libraries itself, so that choosing
# the openai backend never imports torch.
BACKENDS: Mapping[str, Backend] = MappingProxyType(
    {
        "local": Backend(_load_local, uses_adapter_registry=True, loads_weights=True),
        "openai": Backend(_load_openai, uses_adapter_registry=False, loads_weights=False),
    }
)


def load_model(settings: ModelSettings, home: Path, adapters: AdapterRegistry | None = None) -> Model:
    """Start the configured backend (see `BACKENDS`) with its adapters from `adapters`
    (default: `<home>/adapters/` with its ACTIVE file; `bot.adapter_registry` gives the
    configured one); call once per process and share the result."""
    registry = adapters if adapters is not None else AdapterRegistry(home / "adapters")
    return BACKENDS[settings.backend].load(settings, home, registry)


def lazy_model(settings: ModelSettings, home: Path, adapters: AdapterRegistry | None = None) -> LazyModel:
    """The configured model as `load_model` would start it, loaded on first use."""
    from bot.model.weights import base_model_name

    registry = adapters if adapters is not None else AdapterRegistry(home / "adapters")
    if settings.adapter is not None or not BACKENDS[settings.backend].uses_adapter_registry:
        adapter = settings.adapter
    else:
        adapter = registry.active()
    return LazyModel(lambda: load_model(settings, home, registry), base_model_name(settings), adapter)
