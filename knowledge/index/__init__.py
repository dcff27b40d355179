"""The index: the catalog (files, chunks, keyword index, permissions; SQLite or PostgreSQL)
and the Chroma vector store it points into."""

from knowledge.index.catalog import Catalog, CatalogWriter, ChunkFilter, ChunkRecord, FileRecord, acl_key
from knowledge.index.factory import open_catalog
from knowledge.index.keyword import keyword_terms
from knowledge.index.vectors import VectorMetadata, VectorStore

__all__ = [
    "Catalog",
    "CatalogWriter",
    "ChunkFilter",
    "ChunkRecord",
    "FileRecord",
    "VectorMetadata",
    "VectorStore",
    "acl_key",
    "keyword_terms",
    "open_catalog",
]
