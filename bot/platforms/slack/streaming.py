"""Shows the answer in the placeholder message before the final one: the drafted excerpts as
soon as the agent has them, then the model's text growing above them while it writes.

The agent calls `draft` and `push` from its worker thread; updates go out with `chat.update`
at most once per `interval` seconds (Slack allows about one update per second per message),
the first one at once, always with the newest content, and never after `close`
(`bot.conversation.streaming.Throttled`).
"""

from __future__ import annotations

import logging

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.conversation.streaming import Throttled
from bot.platforms.slack.rendering import SlackMessage, render_progress

log = logging.getLogger(__name__)


class ProgressUpdater:
    """Throttled `chat.update`s of one message with the latest draft and partial text."""

    def __init__(self, client: AsyncWebClient, channel: str, ts: str, interval: float = 1.0) -> None:
        self._client = client
        self._channel = channel
        self._ts = ts
        self._latest = ""
        self._draft: SlackMessage | None = None
        self._updates = Throttled(self._update, interval, name=f"slack-progress-{ts}")

    def push(self, text: str) -> None:
        """Take the text so far; safe to call from any thread."""
        self._latest = text
        self._show()

    def draft(self, message: SlackMessage) -> None:
        """Show `message` (the drafted answer) until the final one; safe from any thread."""
        self._draft = message
        self._show()

    async def close(self) -> None:
        """Stop updating; returns once no update is in flight, so the final message comes last."""
        await self._updates.close()

    def _show(self) -> None:
        if self._latest.strip() or self._draft is not None:
            self._updates.offer(render_progress(self._latest, self._draft))

    async def _update(self, message: SlackMessage) -> None:
        try:
            await self._client.chat_update(channel=self._channel, ts=self._ts, **message.payload())
        except SlackApiError as error:
            # A missed progress update is harmless: the final answer replaces it anyway.
            log.warning("progress update failed: %s", error.response.get("error"))
