"""Shows the answer in the placeholder message before the final one: the drafted excerpts as
soon as the agent has them, then the model's text growing above them while it writes.

The agent calls `draft` and `push` from its worker thread; updates go out with `chat.update`
at most once per `interval` seconds (Slack allows about one update per second per message),
the first one at once, always with the newest content, and never after `close`.
"""

from __future__ import annotations

import asyncio
import logging

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.adapters.slack.rendering import SlackMessage, render_progress

log = logging.getLogger(__name__)


class ProgressUpdater:
    """Throttled `chat.update`s of one message with the latest draft and partial text."""

    def __init__(
        self, client: AsyncWebClient, channel: str, ts: str, interval: float = 1.0
    ) -> None:
        self._client = client
        self._channel = channel
        self._ts = ts
        self._interval = interval
        self._loop = asyncio.get_running_loop()
        self._latest = ""
        self._draft: SlackMessage | None = None
        self._sent: SlackMessage | None = None
        self._changed = asyncio.Event()
        self._closed = False
        self._task = self._loop.create_task(self._run(), name=f"slack-progress-{ts}")

    def push(self, text: str) -> None:
        """Take the text so far; safe to call from any thread."""
        self._latest = text  # one reference assignment: atomic, the newest text wins
        self._loop.call_soon_threadsafe(self._changed.set)

    def draft(self, message: SlackMessage) -> None:
        """Show `message` (the drafted answer) until the final one; safe from any thread."""
        self._draft = message
        self._loop.call_soon_threadsafe(self._changed.set)

    async def close(self) -> None:
        """Stop updating; returns once no update is in flight, so the final message comes last."""
        self._closed = True
        self._changed.set()
        await self._task

    async def _run(self) -> None:
        last_update = self._loop.time() - self._interval
        while True:
            await self._changed.wait()
            self._changed.clear()
            if self._closed:
                return
            wait = last_update + self._interval - self._loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
                if self._closed:
                    return
            if not self._latest.strip() and self._draft is None:
                continue
            message = render_progress(self._latest, self._draft)
            if message != self._sent:
                last_update = self._loop.time()
                self._sent = message
                await self._update(message)

    async def _update(self, message: SlackMessage) -> None:
        try:
            await self._client.chat_update(
                channel=self._channel, ts=self._ts, **message.payload()
            )
        except SlackApiError as error:
            # A missed progress update is harmless: the final answer replaces it anyway.
            log.warning("progress update failed: %s", error.response.get("error"))
