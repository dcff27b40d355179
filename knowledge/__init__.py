"""Lore's knowledge layer: from files on a shared drive to ranked, cited passages.

Exports load on first use: `import knowledge` (which the settings module does) stays cheap,
and the parsing and vector libraries are only imported by code that indexes or searches."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from knowledge.knowledge_base import IndexStatus as IndexStatus
    from knowledge.knowledge_base import KnowledgeBase as KnowledgeBase
    from knowledge.retrieval import Retriever as Retriever
    from knowledge.sync import FailedFile as FailedFile
    from knowledge.sync import RefreshReport as RefreshReport
    from knowledge.types import Passage as Passage
    from knowledge.types import SearchFilters as SearchFilters

_EXPORTS = {
    "FailedFile": "knowledge.sync",
    "IndexStatus": "knowledge.knowledge_base",
    "KnowledgeBase": "knowledge.knowledge_base",
    "Passage": "knowledge.types",
    "RefreshReport": "knowledge.sync",
    "Retriever": "knowledge.retrieval",
    "SearchFilters": "knowledge.types",
}

__all__ = ["FailedFile", "IndexStatus", "KnowledgeBase", "Passage", "RefreshReport", "Retriever", "SearchFilters"]


def __getattr__(name: str) -> object:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'knowledge' has no attribute {name!r}")
