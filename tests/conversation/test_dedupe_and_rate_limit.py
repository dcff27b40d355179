"""The duplicate filter and the per-user rate limit, on a fake clock."""

from __future__ import annotations

import pytest

from bot.conversation.dedupe import RecentKeys
from bot.conversation.rate_limit import RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_key_is_new_once_until_it_expires() -> None:
    clock = Clock()
    recent = RecentKeys(ttl_seconds=60, clock=clock)
    assert recent.first_time("event:E1", "message:C1:1.0")
    assert not recent.first_time("event:E1")
    assert not recent.first_time("event:E2", "message:C1:1.0"), "any known key makes a duplicate"
    assert recent.first_time("event:E2"), "an event seen only as a duplicate was not recorded"
    clock.now += 61
    assert recent.first_time("event:E1")


def test_the_cache_is_bounded() -> None:
    recent = RecentKeys(ttl_seconds=3600, max_entries=3, clock=Clock())
    for key in "abcd":
        assert recent.first_time(key)
    assert recent.first_time("a"), "the oldest entry made room"
    assert not recent.first_time("d")


def test_rate_limit_is_a_sliding_window_per_user() -> None:
    clock = Clock()
    limiter = RateLimiter(2, window_seconds=60, clock=clock)
    assert limiter.allow("U1") and limiter.allow("U1")
    assert not limiter.allow("U1")
    assert limiter.allow("U2"), "other users are not affected"
    clock.now += 30
    assert not limiter.allow("U1")
    assert limiter.retry_after("U1") == pytest.approx(30)
    clock.now += 30
    assert limiter.allow("U1") and limiter.retry_after("U2") == 0.0


def test_rate_limit_must_allow_something() -> None:
    with pytest.raises(ValueError):
        RateLimiter(0)
