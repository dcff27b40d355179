"""The worker tests run against a real PostgreSQL server."""

from tests.support.postgres import postgres_url  # noqa: F401  (fixture)
