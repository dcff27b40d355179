"""Per-user rate limit on questions, so one person (or a runaway script) cannot hold the model.
Applied by the conversation service on every platform."""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from typing import Protocol


class Limiter(Protocol):
    """What the conversation layer asks of one platform's rate limit: in-process
    (`RateLimiter`) or shared by every replica (`bot.store.rate_counts.RateCounts`)."""

    def allow(self, user_id: str) -> bool:
        """Count a question by `user_id`; False when it is over the limit (and not counted)."""
        ...

    def retry_after(self, user_id: str) -> float:
        """Seconds until `user_id` may ask again (0 when they may ask now)."""
        ...


class RateLimiter:
    """Allows each user `limit` questions in any sliding window of `window_seconds`."""

    def __init__(
        self,
        limit: int,
        window_seconds: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if limit < 1:
            raise ValueError("the rate limit must allow at least one question per window")
        self._limit = limit
        self._window = window_seconds
        self._clock = clock
        self._recent: defaultdict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def allow(self, user_id: str) -> bool:
        """Count a question by `user_id`; False when it is over the limit (and not counted)."""
        now = self._clock()
        with self._lock:
            recent = self._recent[user_id]
            while recent and now - recent[0] >= self._window:
                recent.popleft()
            if len(recent) >= self._limit:
                return False
            recent.append(now)
            return True

    def retry_after(self, user_id: str) -> float:
        """Seconds until `user_id` may ask again (0 when they may ask now)."""
        now = self._clock()
        with self._lock:
            recent = self._recent.get(user_id)
            if not recent or len(recent) < self._limit:
                return 0.0
            return max(0.0, self._window - (now - recent[0]))
