"""Errors the bot raises on purpose. Messages say what went wrong and what to do.

One hierarchy, like httpx's: every error Lore raises on purpose is a `LoreError` (defined in
`knowledge.errors`, the lowest layer, and re-exported here), so the CLI and the platform
adapters render them in one place. This module holds the root, the shared
`ConfigurationError`, the knowledge layer's branch and the model branch; an error that only
one module raises (a dataset, a question file) subclasses `LoreError` beside that module.

    LoreError
    ├── ConfigurationError
    ├── KnowledgeError              (knowledge/errors.py)
    └── ModelError                  loading or calling a model
        ├── ModelNotFoundError
        ├── AdapterMismatchError
        ├── ModelEndpointError
        └── BusyError
"""

from knowledge.errors import ConfigurationError, KnowledgeError, LoreError

__all__ = [
    "AdapterMismatchError",
    "BusyError",
    "ConfigurationError",
    "KnowledgeError",
    "LoreError",
    "ModelEndpointError",
    "ModelError",
    "ModelNotFoundError",
]


class ModelError(LoreError):
    """Base of the errors raised while loading or calling a model."""


class ModelNotFoundError(ModelError):
    """A model folder, GGUF file or adapter is missing."""


class AdapterMismatchError(ModelError):
    """A LoRA adapter was trained on a different base model than the one loaded."""


class ModelEndpointError(ModelError):
    """An OpenAI-compatible endpoint could not be reached or answered with an error."""


class BusyError(ModelError):
    """The model's request queue is full; try again shortly."""
