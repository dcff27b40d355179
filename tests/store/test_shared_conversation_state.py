"""De-duplication keys and rate-limit counters in the database (#18), on SQLite and
PostgreSQL: the same contracts as the in-process ones, and atomic when several processes (two
`Database`s here, two engines) race on one key."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from threading import Barrier

import pytest

from bot.store.database import Database
from bot.store.delivery_keys import DeliveryKeys
from bot.store.rate_counts import RateCounts


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 4, 9, 0, 10, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def test_a_delivery_key_is_new_once_until_it_expires(any_database: Database) -> None:
    clock = Clock()
    seen = DeliveryKeys(any_database, ttl_seconds=60, clock=clock)
    assert seen.first_time("event:E1", "message:C1:1.0")
    assert not seen.first_time("event:E1")
    assert not seen.first_time("event:E2", "message:C1:1.0"), "any known key makes a duplicate"
    assert seen.first_time("event:E2"), "an event seen only as a duplicate was not recorded"
    clock.advance(61)
    assert seen.first_time("event:E1")
    assert not DeliveryKeys(any_database, ttl_seconds=60, clock=clock).first_time("event:E1"), "shared"
    assert seen.purge_older_than(30) == 2  # E2 and the message key; E1 was seen again just now
    assert not seen.first_time("event:E1")


def test_a_rate_count_allows_the_limit_per_window_and_user(any_database: Database) -> None:
    clock = Clock()  # 10 s into a minute
    limiter = RateCounts(any_database, "slack", 2, window_seconds=60, clock=clock)
    assert limiter.allow("U1") and limiter.allow("U1")
    assert not limiter.allow("U1")
    assert limiter.allow("U2"), "other users are not affected"
    assert RateCounts(any_database, "teams", 2, clock=clock).allow("U1"), "nor other platforms"
    assert not RateCounts(any_database, "slack", 2, clock=clock).allow("U1"), "shared"
    clock.advance(20)
    assert limiter.retry_after("U1") == pytest.approx(30)
    assert limiter.retry_after("U2") == 0.0
    clock.advance(30)
    assert limiter.allow("U1"), "a new window"
    assert limiter.purge_older_than(30) == 3  # the old window's rows: U1 and U2 on slack, U1 on teams
    with pytest.raises(ValueError):
        RateCounts(any_database, "slack", 0)


@pytest.mark.postgres
def test_racing_replicas_answer_a_key_once_and_count_exactly(any_database: Database) -> None:
    if any_database.engine.dialect.name != "postgresql":
        pytest.skip("several machines share PostgreSQL only")
    other = Database(any_database.url)  # a second replica: its own engine and connections
    try:
        replicas = [any_database, other] * 4
        start = Barrier(len(replicas))

        def deliver(db: Database) -> bool:
            start.wait()
            return DeliveryKeys(db).first_time("message:C1:7.0", "event:E7")

        with ThreadPoolExecutor(len(replicas)) as pool:
            assert sorted(pool.map(deliver, replicas)) == [False] * (len(replicas) - 1) + [True]

        start = Barrier(len(replicas))

        def ask(db: Database) -> list[bool]:
            start.wait()
            limiter = RateCounts(db, "slack", 10, clock=Clock())  # one window for all
            return [limiter.allow("U1") for _ in range(5)]

        with ThreadPoolExecutor(len(replicas)) as pool:
            allowed = [ok for answers in pool.map(ask, replicas) for ok in answers]
        assert sum(allowed) == 10  # of 40 questions in one window
    finally:
        other.close()
