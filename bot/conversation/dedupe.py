"""Remembers what was already handled, so a platform's retries and duplicate deliveries of one
event never produce a second answer."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol


class SeenKeys(Protocol):
    """What the conversation layer asks of a duplicate filter: in-process (`RecentKeys`) or
    shared by every replica through the database (`bot.store.delivery_keys.DeliveryKeys`)."""

    def first_time(self, *keys: str) -> bool:
        """Record `keys`; True when none of them was seen before (the event is new)."""
        ...


class RecentKeys:
    """A bounded set of keys that forgets each key `ttl_seconds` after it was added."""

    def __init__(
        self,
        ttl_seconds: float = 3600.0,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl = ttl_seconds
        self._max = max_entries
        self._clock = clock
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def first_time(self, *keys: str) -> bool:
        """Record `keys`; True when none of them was seen within the TTL (the event is new)."""
        now = self._clock()
        with self._lock:
            self._expire(now)
            if any(key in self._seen for key in keys):
                return False
            for key in keys:
                self._seen[key] = now
            while len(self._seen) > self._max:
                self._seen.popitem(last=False)
            return True

    def _expire(self, now: float) -> None:
        while self._seen:
            key, added = next(iter(self._seen.items()))
            if now - added < self._ttl:
                break
            del self._seen[key]
