"""Errors the knowledge layer raises; each message says what to do about it.

`LoreError` is the root of every error Lore raises on purpose, in `knowledge` and in `bot`
alike. It lives here, in the lowest layer, because `knowledge` never imports `bot`;
`bot.errors` re-exports it with the bot's own branches. The tree:

    LoreError
    ├── ConfigurationError          a setting is missing or wrong (any layer)
    ├── KnowledgeError              the knowledge layer (this module)
    │   ├── SourceError ── AccessDeniedError
    │   ├── LoaderError
    │   │   ├── LimitExceededError ── FileTooLargeError
    │   │   ├── EncryptedDocumentError
    │   │   └── UnsupportedFormatError
    │   ├── IndexBusyError
    │   └── IndexUnavailableError
    └── ...                         the bot's branches (bot/errors.py)
"""

from __future__ import annotations


class LoreError(Exception):
    """Base of every error Lore raises on purpose. The CLI and adapters render these once."""


class ConfigurationError(LoreError):
    """A setting is missing or wrong."""


class KnowledgeError(LoreError):
    """Base of the errors the knowledge layer (sources, loaders, index) raises."""


class SourceError(KnowledgeError):
    """A source folder cannot be read."""


class AccessDeniedError(SourceError):
    """The file system refused Lore's account (EACCES/EPERM): someone withdrew Lore's read
    access, so what Lore had indexed from there leaves the index. Unlike a missing or
    unmounted folder, which keeps its documents until it comes back."""


class LoaderError(KnowledgeError):
    """One file cannot be parsed (corrupt, encrypted, unsupported). Sync skips and reports it."""


class LimitExceededError(LoaderError):
    """One file exceeds an ingestion limit (size, inflated size, text, time or memory).
    Sync skips and reports it like a corrupt file; the message names the setting to raise."""


class FileTooLargeError(LimitExceededError):
    """A file is larger than its source's `max_file_bytes`: it is not read."""

    @classmethod
    def of(cls, size: int, limit: int) -> FileTooLargeError:
        return cls(
            f"{size:,} bytes, over the {limit:,}-byte limit (max_file_bytes of its source in "
            "lore.toml): not read; raise the limit or exclude the file"
        )


class EncryptedDocumentError(LoaderError):
    """A file locked with a password: its author restricted it in a way Lore cannot map to
    readers, so sync withdraws what it had indexed from it."""


class IndexBusyError(KnowledgeError):
    """Another refresh holds the index lock."""


class IndexUnavailableError(KnowledgeError):
    """The vector store (embedded Chroma or a Chroma server) cannot be reached or opened."""


class UnsupportedFormatError(LoaderError):
    """The file type has no loader (images, binaries). Sync skips and counts it, no report."""
