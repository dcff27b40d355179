"""What the Sources page asks of the CLI's source and ACL commands (the per-source summary of
`lore sources list`, the file `lore acl explain` looks at), passed in by `lore serve`: the CLI
mounts the console, so the console does not import the CLI."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.settings import LoreSettings
from knowledge.types import SourceFile


@dataclass(frozen=True)
class SourceLookups:
    # Each configured source's summary, as `lore sources list --json` prints it (dataclasses).
    summarize: Callable[[LoreSettings, datetime], Sequence[Any]]
    # The document at a path (relative to its source, or absolute) and why it would not be
    # indexed (None: it would be); raises a LoreError for a path in no source.
    document: Callable[[LoreSettings, str, str | None], tuple[SourceFile, str | None]]
