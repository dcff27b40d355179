"""Model runtime: one `Model` interface, a local transformers backend and an OpenAI-compatible one."""

from __future__ import annotations

from pathlib import Path

from bot.model.adapters import AdapterRegistry
from bot.model.base import ChatMessage, GenerationSettings, Model
from bot.model.lazy import LazyModel
from bot.settings import ModelSettings

__all__ = [
    "AdapterRegistry",
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


def load_model(settings: ModelSettings, home: Path) -> Model:
    """Start the configured backend; call once per process and share the result.

    `local`: the base model (`settings.base_model` or the bundled SmolLM2, cached under
    `<home>/models/` on first use) with `settings.adapter`, else the promoted adapter in
    `<home>/adapters/`. `openai`: the endpoint `settings.openai_base_url`, answering as
    `settings.adapter` when set, else `settings.openai_model`.
    """
    # Imported here so that choosing the openai backend never imports torch.
    if settings.backend == "openai":
        from bot.model.openai_backend import OpenAIModel
        from bot.model.tokens import ChatTokenizer
        from bot.model.weights import check_model_folder

        tokenizer = (
            ChatTokenizer.from_folder(check_model_folder(settings.base_model))
            if settings.base_model is not None
            else None
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

    from bot.model.local import LocalModel
    from bot.model.weights import base_model_name, resolve_base_model

    adapters = AdapterRegistry(home / "adapters")
    return LocalModel(
        resolve_base_model(settings, home),
        name=base_model_name(settings),
        adapters=adapters,
        adapter=settings.adapter if settings.adapter is not None else adapters.active(),
        device=settings.device,
        queue_size=settings.queue_size,
        defaults=generation_defaults(settings),
    )


def lazy_model(settings: ModelSettings, home: Path) -> LazyModel:
    """The configured model as `load_model` would start it, loaded on first use."""
    from bot.model.weights import base_model_name

    if settings.adapter is not None or settings.backend == "openai":
        adapter = settings.adapter
    else:
        adapter = AdapterRegistry(home / "adapters").active()
    return LazyModel(lambda: load_model(settings, home), base_model_name(settings), adapter)
