"""Throttled streaming of a growing answer, for every platform: the agent offers the newest
content from its worker thread; one task on the event loop sends it at most once per
`interval` seconds, always the newest, never the same twice, and never after `close`."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Throttled(Generic[T]):
    """Sends offered values with `send`, throttled. Create it on the event loop."""

    def __init__(
        self,
        send: Callable[[T], Awaitable[None]],
        interval: float,
        *,
        first_at_once: bool = True,
        name: str = "stream",
    ) -> None:
        """`send` handles its own delivery errors (a lost update is replaced by the next, or
        by the final message). `first_at_once`: False when something was sent just now (the
        first update then waits `interval` too)."""
        self._send = send
        self._interval = interval
        self._loop = asyncio.get_running_loop()
        self._latest: T | None = None
        self._sent: T | None = None
        self._changed = asyncio.Event()
        self._closed = False
        self._last = self._loop.time() - (interval if first_at_once else 0.0)
        self._task = self._loop.create_task(self._run(), name=name)

    def offer(self, value: T) -> None:
        """Make `value` the newest content; safe to call from any thread."""
        self._latest = value  # one reference assignment: atomic, the newest value wins
        self._loop.call_soon_threadsafe(self._changed.set)

    async def close(self) -> None:
        """Stop sending; returns once no update is in flight, so the final message comes last."""
        self._closed = True
        self._changed.set()
        await self._task

    async def _run(self) -> None:
        while True:
            await self._changed.wait()
            self._changed.clear()
            if self._closed:
                return
            wait = self._last + self._interval - self._loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
                if self._closed:
                    return
            value = self._latest
            if value is None or value == self._sent:
                continue
            self._last = self._loop.time()
            self._sent = value
            await self._send(value)
