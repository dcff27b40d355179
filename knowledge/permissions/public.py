"""Which indexed documents everyone may read: by default only these may train a shared
adapter (what the model learns, it may repeat to anyone)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, cast

from knowledge.types import EVERYONE

if TYPE_CHECKING:  # the catalog pulls in numpy and chromadb; callers already hold one
    from knowledge.index.catalog import Catalog


class _HasCatalog(Protocol):
    catalog: Catalog


def public_documents(index: Catalog | _HasCatalog) -> set[tuple[str, str]]:
    """(source name, path relative to its root) of every indexed document shared with
    `everyone`, as stored by the last refresh. Accepts a Catalog or a KnowledgeBase."""
    catalog = cast("Catalog", getattr(index, "catalog", index))
    files = catalog.files()
    principals = catalog.principals_of(record.acl for record in files.values())
    return {key for key, record in files.items() if EVERYONE in principals.get(record.acl, frozenset())}
