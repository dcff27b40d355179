"""Where documents come from: the `Source` interface and its filesystem implementation."""

from knowledge.sources.base import Source
from knowledge.sources.filesystem import FilesystemSource, SourceProblem

__all__ = ["FilesystemSource", "Source", "SourceProblem"]
