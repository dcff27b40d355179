"""Teams' streaming protocol for personal chats: an informative update ("Looking through the
documents…") at once, then the growing answer text as streaming updates (at most one a second,
as Teams asks), then a final message that ends the stream.

Each update is a `typing` activity with a `streaminfo` entity; the id Teams gives the first
one names the stream; the final message carries `streamType: final`. The agent calls `on_text`
from its worker thread, so updates are handed over to the event loop and sent by one task,
always with the newest text. When the agent drafts an answer (the excerpts, before the model
writes), `on_draft` shows it at once and the model's text grows beneath it: Teams wants each
update to extend the one before.
"""

from __future__ import annotations

import asyncio
import logging

from botbuilder.core import TurnContext
from botbuilder.schema import Activity, ActivityTypes, Entity

from bot.conversation.streaming import Throttled
from bot.types import Answer

log = logging.getLogger(__name__)

INFORMATIVE_TEXT = "Looking through the documents…"
UPDATE_INTERVAL_SECONDS = 1.0  # Teams throttles streams to about one update a second


class TeamsStream:
    """One streamed reply in a personal chat."""

    def __init__(self, turn_context: TurnContext, interval: float = UPDATE_INTERVAL_SECONDS) -> None:
        self._context = turn_context
        self._interval = interval
        self._loop = asyncio.get_running_loop()
        self._text = ""
        self._draft = ""
        self._sequence = 0
        self._updates: Throttled[str] | None = None
        self.stream_id: str | None = None

    async def start(self) -> bool:
        """Send the informative update. False when Teams refused a stream (then reply plainly)."""
        try:
            response = await self._context.send_activity(self._update(INFORMATIVE_TEXT, "informative"))
        except Exception as error:
            log.info("teams: streaming unavailable here (%s); replying in one message", error)
            return False
        if response is None or not response.id:
            return False
        self.stream_id = response.id
        # The informative update went out just now: the first text waits its turn too.
        self._updates = Throttled(self._send, self._interval, first_at_once=False, name="teams-stream")
        return True

    def on_text(self, text: str) -> None:
        """Called by the agent (from its worker thread) with the answer so far."""
        self._loop.call_soon_threadsafe(self._set_text, text)

    def on_draft(self, draft: Answer) -> None:
        """Called by the agent (from its worker thread) with the drafted answer."""
        self._loop.call_soon_threadsafe(self._set_draft, draft.text)

    async def finish(self, final: Activity) -> Activity:
        """Stop the updates and mark `final` as the message that ends the stream."""
        if self._updates is not None:
            await self._updates.close()
        final.entities = [*(final.entities or []), _stream_info(self.stream_id, "final", None)]
        return final

    async def abandon(self) -> None:
        """Stop sending updates (the reply will be an apology instead)."""
        await self.finish(Activity(type=ActivityTypes.message))

    def _set_text(self, text: str) -> None:
        self._text = f"{self._draft}\n\n{text}" if self._draft else text
        self._offer()

    def _set_draft(self, text: str) -> None:
        self._draft = self._text = text
        self._offer()

    def _offer(self) -> None:
        if self._updates is not None and self._text:
            self._updates.offer(self._text)

    async def _send(self, text: str) -> None:
        try:
            await self._context.send_activity(self._update(text, "streaming"))
        except Exception as error:  # a lost update is replaced by the next one or the final
            log.debug("teams: stream update failed: %s", error)

    def _update(self, text: str, kind: str) -> Activity:
        self._sequence += 1
        return Activity(
            type=ActivityTypes.typing,
            text=text,
            entities=[_stream_info(self.stream_id, kind, self._sequence)],
        )


class StreamInfo(Entity):
    """The `streaminfo` entity (botbuilder 4.17 has no model for it, and `Entity` drops
    properties it does not declare when serializing)."""

    _attribute_map = {
        "type": {"key": "type", "type": "str"},
        "stream_id": {"key": "streamId", "type": "str"},
        "stream_type": {"key": "streamType", "type": "str"},
        "stream_sequence": {"key": "streamSequence", "type": "int"},
    }

    def __init__(self, *, stream_type: str, stream_id: str | None = None, stream_sequence: int | None = None) -> None:
        super().__init__(type="streaminfo")
        self.stream_type = stream_type
        self.stream_id = stream_id
        self.stream_sequence = stream_sequence


def _stream_info(stream_id: str | None, kind: str, sequence: int | None) -> StreamInfo:
    return StreamInfo(stream_type=kind, stream_id=stream_id, stream_sequence=sequence)
