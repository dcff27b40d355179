"""The scale-out tests run real processes against a real PostgreSQL and a real Chroma server."""

from tests.support.chroma_server import chroma_server  # noqa: F401  (fixture)
from tests.support.postgres import postgres_url  # noqa: F401  (fixture)
