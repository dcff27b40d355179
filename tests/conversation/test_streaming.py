"""The throttle both platforms stream through."""

from __future__ import annotations

import asyncio
import threading

from bot.conversation.streaming import Throttled

INTERVAL = 0.2


async def test_the_newest_value_goes_out_at_most_once_per_interval_and_never_after_close() -> None:
    loop = asyncio.get_running_loop()
    sent: list[tuple[float, str]] = []

    async def send(text: str) -> None:
        sent.append((loop.time(), text))

    updates = Throttled(send, INTERVAL)

    def write() -> None:  # the agent's worker thread
        for n in range(1, 21):
            updates.offer(f"text {n}")
            threading.Event().wait(0.02)
        updates.offer("text 20")  # unchanged: not sent again

    await asyncio.to_thread(write)
    await asyncio.sleep(INTERVAL * 1.5)
    await updates.close()
    updates.offer("too late")
    await asyncio.sleep(INTERVAL * 1.5)

    texts = [text for _, text in sent]
    assert texts[0] == "text 1" and texts[-1] == "text 20"  # the first at once, the newest last
    assert len(texts) == len(set(texts)) < 20
    gaps = [b - a for (a, _), (b, _) in zip(sent, sent[1:], strict=False)]
    assert min(gaps) >= INTERVAL * 0.9
