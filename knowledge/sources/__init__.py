"""Where documents come from: the `Source` interface, its implementations and the table
that picks one per `kind`."""

from knowledge.sources.base import Source, SourceProblem, SyncState
from knowledge.sources.filesystem import FilesystemSource
from knowledge.sources.registry import SOURCE_KINDS, open_source

__all__ = ["SOURCE_KINDS", "FilesystemSource", "Source", "SourceProblem", "SyncState", "open_source"]
