"""The index: the SQLite catalog (files, chunks, keyword index, permissions) and the Chroma
vector store it points into."""

from knowledge.index.catalog import Catalog, ChunkFilter, ChunkRecord, FileRecord, acl_key
from knowledge.index.keyword import keyword_query
from knowledge.index.vectors import VectorMetadata, VectorStore

__all__ = [
    "Catalog",
    "ChunkFilter",
    "ChunkRecord",
    "FileRecord",
    "VectorMetadata",
    "VectorStore",
    "acl_key",
    "keyword_query",
]
