"""The stores' tests run on SQLite and on a real PostgreSQL server (`any_database`)."""

from tests.support.postgres import any_database, postgres_url  # noqa: F401  (fixtures)
