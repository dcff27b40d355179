"""The index tests that touch the catalog run on SQLite and on a real PostgreSQL server
(`catalog_url`, `module_catalog_url`: None, then a fresh database's URL)."""

from tests.support.postgres import catalog_url, module_catalog_url, postgres_url  # noqa: F401  (fixtures)
