"""A small time-bounded cache for identity look-ups (Slack users.info, Teams members)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

V = TypeVar("V")


@dataclass
class TtlCache(Generic[V]):
    """Values remembered for `ttl_seconds`, at most `max_entries` (the oldest leave first).
    Not locked: it is used from one event loop."""

    ttl_seconds: float
    max_entries: int = 10_000
    clock: Callable[[], float] = time.monotonic
    _entries: dict[str, tuple[float, V]] = field(default_factory=dict)

    def get(self, key: str) -> tuple[bool, V | None]:
        """(True, value) while fresh, else (False, None)."""
        entry = self._entries.get(key)
        if entry is None or entry[0] <= self.clock():
            self._entries.pop(key, None)
            return False, None
        return True, entry[1]

    def put(self, key: str, value: V, ttl_seconds: float | None = None) -> None:
        self._entries.pop(key, None)
        while len(self._entries) >= self.max_entries:
            del self._entries[next(iter(self._entries))]
        self._entries[key] = (self.clock() + (self.ttl_seconds if ttl_seconds is None else ttl_seconds), value)
