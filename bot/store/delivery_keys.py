"""The platform deliveries already handled, in the database: with several `lore serve`
replicas on one PostgreSQL database, a platform's retry that lands on another replica than
the first delivery is recognized and dropped. Same contract as the in-process
`bot.conversation.dedupe.RecentKeys`."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete

from bot.store.database import Database
from bot.store.tables import delivery_keys
from bot.store.upsert import insert_or_update


def _now() -> datetime:
    return datetime.now(UTC)


class DeliveryKeys:
    """Keys remembered for `ttl_seconds` (a platform's retries come within minutes)."""

    def __init__(self, db: Database, ttl_seconds: float = 3600.0, clock: Callable[[], datetime] = _now) -> None:
        self._engine = db.engine
        self._ttl = timedelta(seconds=ttl_seconds)
        self._clock = clock

    def first_time(self, *keys: str) -> bool:
        """Record `keys`; True when none of them was seen within the TTL (the event is new).
        A duplicate records nothing. Two replicas recording one key at once: one gets True."""
        now = self._clock()
        with self._engine.connect() as connection:
            # Sorted: two deliveries sharing keys take their row locks in one order (no deadlock).
            for key in sorted(set(keys)):
                fresh = insert_or_update(
                    connection,
                    delivery_keys,
                    {"key": key, "seen_at": now},
                    {"seen_at": now},
                    where=delivery_keys.c.seen_at <= now - self._ttl,  # an expired key is new again
                )
                if not fresh:
                    connection.rollback()
                    return False
            connection.commit()
        return True

    def purge_older_than(self, seconds: float) -> int:
        """Forget keys seen more than `seconds` ago; returns how many went."""
        cutoff = self._clock() - timedelta(seconds=seconds)
        with self._engine.begin() as connection:
            result = connection.execute(delete(delivery_keys).where(delivery_keys.c.seen_at < cutoff))
        return int(result.rowcount or 0)
