"""Where documents come from: the `Source` interface and its filesystem implementation."""

from knowledge.sources.base import Source, SourceProblem
from knowledge.sources.filesystem import FilesystemSource

__all__ = ["FilesystemSource", "Source", "SourceProblem"]
