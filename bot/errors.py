"""Errors the bot raises on purpose. Messages say what went wrong and what to do."""

from knowledge.errors import ConfigurationError, LoreError

__all__ = [
    "AdapterMismatchError",
    "BusyError",
    "ConfigurationError",
    "LoreError",
    "ModelEndpointError",
    "ModelNotFoundError",
]


class ModelNotFoundError(LoreError):
    """A model folder, GGUF file or adapter is missing."""


class AdapterMismatchError(LoreError):
    """A LoRA adapter was trained on a different base model than the one loaded."""


class ModelEndpointError(LoreError):
    """An OpenAI-compatible endpoint could not be reached or answered with an error."""


class BusyError(LoreError):
    """The model's request queue is full; try again shortly."""
