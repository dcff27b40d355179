"""Delivers the answer to one Slack question (asked through the conversation service): a placeholder at once, the
drafted excerpts in it as soon as they are ready and the model's text growing above them
while it writes (when the model writes at all), then the final Block Kit answer — or, when anything
fails, a short apology with an error id that is in the log next to the traceback."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.conversation.service import ConversationService, Notice
from bot.platforms.slack.rendering import (
    AnswerContent,
    SlackMessage,
    render_answer,
    render_notice,
    render_placeholder,
)
from bot.platforms.slack.streaming import ProgressUpdater
from bot.store.sent_messages import SentMessage, SentMessages
from bot.types import Answer, Question

log = logging.getLogger(__name__)

# bolt's `respond`: posts to the interaction's response_url.
Respond = Callable[..., Awaitable[Any]]
# chat.postEphemeral fails with these when the bot is not in the channel; the interaction's
# response_url still reaches the user there.
_NOT_REACHABLE = {"channel_not_found", "not_in_channel", "user_not_in_channel"}


@dataclass(frozen=True)
class Delivery:
    """Where a public answer goes: a channel, and the thread to answer in (None: top level)."""

    channel: str
    thread_ts: str | None


class Responder:
    """Asks the conversation service and posts what it gives back to Slack."""

    def __init__(
        self,
        conversation: ConversationService,
        client: AsyncWebClient,
        sent: SentMessages,
        progress_interval: float = 1.0,
    ) -> None:
        self._conversation = conversation
        self._client = client
        self._sent = sent
        self._progress_interval = progress_interval

    async def answer_publicly(self, question: Question, where: Delivery) -> None:
        """Answer where everyone in the conversation sees it, streaming into a placeholder."""
        started = time.monotonic()
        try:
            placeholder = await self._client.chat_postMessage(
                channel=where.channel, thread_ts=where.thread_ts, **render_placeholder().payload()
            )
        except SlackApiError as error:
            log.error(
                "cannot post in channel=%s (%s); question dropped",
                where.channel,
                error.response.get("error"),
            )
            return
        ts: str = placeholder["ts"]
        first_reply = time.monotonic() - started
        progress = ProgressUpdater(self._client, where.channel, ts, self._progress_interval)
        try:
            # From now on replies under the answer are follow-ups (a DM is one conversation).
            if not where.channel.startswith("D"):
                placeholder_sent = SentMessage(question.platform, where.channel, ts, thread_id=where.thread_ts or ts)
                await asyncio.to_thread(self._sent.remember, placeholder_sent)
            answer = await self._conversation.ask(
                question,
                progress.push,
                lambda draft: progress.draft(render_answer(AnswerContent.of(draft))[0]),
            )
            await progress.close()
            if isinstance(answer, Notice):
                await self._client.chat_update(channel=where.channel, ts=ts, **render_notice(answer.text).payload())
                return
            messages = render_answer(AnswerContent.of(answer))
            await self._client.chat_update(channel=where.channel, ts=ts, **messages[0].payload())
            for message in messages[1:]:
                await self._client.chat_postMessage(
                    channel=where.channel, thread_ts=where.thread_ts or ts, **message.payload()
                )
        except Exception as error:  # every failure becomes an apology
            await progress.close()
            notice = render_notice(self._conversation.answer_failure(error, question).text)
            try:
                await self._client.chat_update(channel=where.channel, ts=ts, **notice.payload())
            except SlackApiError:
                log.exception("could not replace the placeholder with the apology")
            return
        self._log_answer(answer, first_reply, time.monotonic() - started)

    async def answer_privately(self, question: Question, user_id: str, respond: Respond) -> None:
        """Answer only the asker (ephemeral), with a button to share the answer."""
        started = time.monotonic()
        channel = question.conversation_id
        try:
            answer = await self._conversation.ask(question)
            if isinstance(answer, Notice):
                await post_ephemeral(self._client, respond, channel, user_id, render_notice(answer.text))
                return
            for message in render_answer(AnswerContent.of(answer), shareable=True):
                await post_ephemeral(self._client, respond, channel, user_id, message)
        except Exception as error:  # every failure becomes an apology
            notice = render_notice(self._conversation.answer_failure(error, question).text)
            try:
                await post_ephemeral(self._client, respond, channel, user_id, notice)
            except Exception:  # sending the apology failed too: only the log is left
                log.exception("could not send the apology")
            return
        self._log_answer(answer, None, time.monotonic() - started)

    @staticmethod
    def _log_answer(answer: Answer, first_reply: float | None, total: float) -> None:
        """One line per answer: ids and timings, never the question or answer text. The first
        reply of a private answer is the command's acknowledgement (None here)."""
        question = answer.question
        timings = " ".join(f"{key}={value:.2f}s" for key, value in answer.timings.items())
        log.info(
            "slack answer id=%s channel=%s user=%s thread=%s place=%s confident=%s sources=%d "
            "model=%s adapter=%s first_reply=%s delivered=%.2fs %s",
            answer.id,
            question.conversation_id,
            question.asker.user_id,
            question.thread_id,
            question.place,
            answer.confident,
            len(answer.citations),
            answer.model,
            answer.adapter,
            "ack" if first_reply is None else f"{first_reply:.2f}s",
            total,
            timings,
        )


async def post_ephemeral(
    client: AsyncWebClient,
    respond: Respond,
    channel: str,
    user_id: str,
    message: SlackMessage,
    thread_ts: str | None = None,
) -> None:
    """Show `message` to `user_id` only; through the interaction's response_url when the bot
    is not a member of the channel (slash commands work in any channel)."""
    try:
        await client.chat_postEphemeral(channel=channel, user=user_id, thread_ts=thread_ts, **message.payload())
    except SlackApiError as error:
        if error.response.get("error") not in _NOT_REACHABLE:
            raise
        await respond(**message.payload(), response_type="ephemeral", replace_original=False)
