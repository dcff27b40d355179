"""A bound on the questions a model holds at once, waiting or being answered."""

from __future__ import annotations

import threading

from bot.errors import BusyError, ConfigurationError


class RequestGate:
    """Admits at most `capacity` requests at a time and refuses the rest with BusyError.

    Refusing quickly beats queueing without bound: on 2 CPU cores each answer takes seconds, so a
    long queue means answers arrive after people have given up on them.
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ConfigurationError(f"model.queue_size must be at least 1, not {capacity}")
        self._capacity = capacity
        self._depth = 0
        self._lock = threading.Lock()

    @property
    def depth(self) -> int:
        """Requests admitted and not yet finished."""
        return self._depth

    def enter(self) -> None:
        """Admit one request or raise BusyError; pair every successful call with `leave()`."""
        with self._lock:
            if self._depth >= self._capacity:
                raise BusyError(f"the model is busy with {self._depth} questions; try again in a moment")
            self._depth += 1

    def leave(self) -> None:
        """Mark one admitted request as finished."""
        with self._lock:
            self._depth -= 1
