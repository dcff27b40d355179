"""Per-user question counts in the database, so that a rate limit holds across every
`lore serve` replica on one PostgreSQL database: a fixed-window counter row per user and
window, incremented atomically. Same contract as the in-process
`bot.conversation.rate_limit.RateLimiter`, whose window slides; a fixed window lets a user ask
up to twice the limit across a window boundary, which is enough against a runaway script."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, delete, select

from bot.store.database import Database, as_utc
from bot.store.tables import rate_counts
from bot.store.upsert import insert_or_update


def _now() -> datetime:
    return datetime.now(UTC)


class RateCounts:
    """Allows each user of `platform` `limit` questions per fixed window of `window_seconds`."""

    def __init__(
        self,
        db: Database,
        platform: str,
        limit: int,
        window_seconds: float = 60.0,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        if limit < 1:
            raise ValueError("the rate limit must allow at least one question per window")
        self._engine = db.engine
        self._platform = platform
        self._limit = limit
        self._window = window_seconds
        self._clock = clock

    def _window_start(self, now: datetime) -> datetime:
        return datetime.fromtimestamp(now.timestamp() // self._window * self._window, UTC)

    def allow(self, user_id: str) -> bool:
        """Count a question by `user_id`; False when it is over the limit (and not counted)."""
        now = self._clock()
        with self._engine.begin() as connection:
            return insert_or_update(
                connection,
                rate_counts,
                {"platform": self._platform, "user_id": user_id, "window_start": self._window_start(now), "count": 1},
                {"count": rate_counts.c.count + 1},
                where=rate_counts.c.count < self._limit,
            )

    def retry_after(self, user_id: str) -> float:
        """Seconds until `user_id` may ask again (0 when they may ask now)."""
        now = self._clock()
        start = self._window_start(now)
        query = select(rate_counts.c.count).where(
            rate_counts.c.platform == self._platform,
            rate_counts.c.user_id == user_id,
            rate_counts.c.window_start == start,
        )
        with self._engine.connect() as connection:
            count = connection.execute(query).scalar_one_or_none()
        if count is None or count < self._limit:
            return 0.0
        return max(0.0, (as_utc(start) + timedelta(seconds=self._window) - now).total_seconds())

    def purge_older_than(self, seconds: float) -> int:
        """Forget windows that started more than `seconds` ago, every platform's; returns how
        many rows went."""
        return _purge(self._engine, self._clock() - timedelta(seconds=seconds))

    @staticmethod
    def purge_all_older_than(db: Database, seconds: float) -> int:
        """`purge_older_than` without a limiter at hand (housekeeping)."""
        return _purge(db.engine, _now() - timedelta(seconds=seconds))


def _purge(engine: Engine, cutoff: datetime) -> int:
    with engine.begin() as connection:
        result = connection.execute(delete(rate_counts).where(rate_counts.c.window_start < cutoff))
    return int(result.rowcount or 0)
