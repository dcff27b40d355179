"""Which catalog an index uses: PostgreSQL when given a PostgreSQL URL (shared by every
machine using that database), else the SQLite file under the index folder."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import make_url

from knowledge.errors import ConfigurationError
from knowledge.index.catalog import Catalog
from knowledge.index.postgres_catalog import PostgresCatalog
from knowledge.index.sqlite_catalog import SqliteCatalog

SQLITE_FILE = "catalog.sqlite3"


def is_postgres(url: str | None) -> bool:
    """Whether `url` (a SQLAlchemy URL, or None) names a PostgreSQL database."""
    return url is not None and make_url(url).get_backend_name() == "postgresql"


def open_catalog(index_dir: Path, url: str | None = None) -> Catalog:
    """The PostgreSQL catalog at `url`, or (None) the SQLite catalog
    `index_dir/catalog.sqlite3`."""
    if url is None:
        return SqliteCatalog(index_dir / SQLITE_FILE)
    if not is_postgres(url):
        raise ConfigurationError(
            f"a shared catalog needs a PostgreSQL URL (postgresql+psycopg://...), not {make_url(url).drivername}:"
            " leave it unset for the SQLite catalog under the index folder."
        )
    return PostgresCatalog(url)
