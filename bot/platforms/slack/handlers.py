"""What the bot does with each Slack trigger: mentions, DMs, thread follow-ups, `/lore`,
the feedback buttons and modal, and "Share in channel".

Every handler acknowledges first (bolt acks events before calling them; commands and actions
call `ack()` as their first await) and leaves the slow work to a task on the `Workload`, so
Slack always gets its answer within 3 seconds.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from typing import Any

from slack_bolt.context.async_context import AsyncBoltContext
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.conversation.service import ConversationService
from bot.core.access import AccessPolicy
from bot.platforms.slack.membership import SlackMembership
from bot.platforms.slack.questions import clean_text, mentions, place_of, slack_question
from bot.platforms.slack.rendering import (
    INPUT_ACTION,
    PLACEHOLDER_TEXT,
    RIGHT_BLOCK,
    WRONG_BLOCK,
    AnswerContent,
    SlackMessage,
    feedback_modal,
    render_answer,
    render_help,
    render_notice,
)
from bot.platforms.slack.responder import (
    Delivery,
    Respond,
    Responder,
    post_ephemeral,
)
from bot.server import Workload
from bot.settings import SlackSettings
from bot.store.answers import AnswerLog, StoredAnswer
from bot.store.feedback import Feedback, Rating
from bot.store.sent_messages import SentMessage, SentMessages
from bot.types import Citation, Evidence, Place

log = logging.getLogger(__name__)

PLATFORM = "slack"
# The `channel_type`s of message events the bot reads, with the event subscription that
# delivers each: DMs ("im") are questions; in the others, replies in a thread the bot answered
# are follow-ups.
MESSAGE_EVENTS = {
    "im": "message.im",
    "channel": "message.channels",
    "group": "message.groups",
    "mpim": "message.mpim",
}
# Message subtypes that are still a person writing; every other subtype (edits, deletions,
# joins, bot messages) is ignored.
_PERSON_SUBTYPES = {None, "thread_broadcast", "file_share"}
# How long the store may take before `/lore feedback` answers anyway (Slack waits 3 s).
_FEEDBACK_ACK_BUDGET = 2.0


class SlackHandlers:
    """Bolt listeners; one instance per app, sharing the collaborators passed in."""

    def __init__(
        self,
        settings: SlackSettings,
        responder: Responder,
        conversation: ConversationService,
        answers: AnswerLog,
        sent: SentMessages,
        workload: Workload,
        membership: SlackMembership,
        access: AccessPolicy,
        command: str = "/lore",
    ) -> None:
        """`membership` admits askers (colleagues only, outside shared channels) and finds
        their e-mail (their permissions); `access` checks "Share in channel" against the
        channel's audience."""
        self._settings = settings
        self._responder = responder
        self._conversation = conversation
        self._answers = answers
        self._sent = sent
        self._workload = workload
        self._membership = membership
        self._access = access
        self.command = command

    # --- events -------------------------------------------------------------------------

    async def on_mention(
        self,
        body: dict[str, Any],
        event: dict[str, Any],
        context: AsyncBoltContext,
        client: AsyncWebClient,
    ) -> None:
        """@Lore in a channel: answer in a thread under the question."""
        if event.get("bot_id") or not event.get("user") or not self._new_event(body, event):
            return
        channel, ts = event["channel"], event["ts"]
        in_thread = "thread_ts" in event and event["thread_ts"] != ts
        thread_ts = event.get("thread_ts", ts)
        text = clean_text(event.get("text", ""), context.bot_user_id)
        await self._ask(
            client,
            text,
            event["user"],
            channel,
            thread_ts,
            Delivery(channel, thread_ts),
            place_of(channel, in_thread),
            body.get("is_ext_shared_channel"),
        )

    async def on_message(
        self,
        body: dict[str, Any],
        event: dict[str, Any],
        context: AsyncBoltContext,
        client: AsyncWebClient,
    ) -> None:
        """A DM, or a reply in a thread the bot answered (a follow-up without a mention)."""
        user = event.get("user")
        if (
            event.get("subtype") not in _PERSON_SUBTYPES
            or event.get("bot_id")
            or not user
            or user == context.bot_user_id
        ):
            return
        channel, ts = event["channel"], event["ts"]
        thread_ts = event.get("thread_ts")
        # The thread this message replies in; None for a message of its own.
        reply_in: str | None = thread_ts if thread_ts is not None and thread_ts != ts else None
        if event.get("channel_type") == "im":
            # The whole DM is one conversation unless the person replies in a thread.
            delivery = Delivery(channel, reply_in)
            memory_thread = reply_in if reply_in is not None else channel
        elif event.get("channel_type") in MESSAGE_EVENTS and reply_in is not None:
            if mentions(event.get("text", ""), context.bot_user_id):
                return  # the app_mention event for the same message answers it
            if self._followups(channel) != "always":
                return
            if not await asyncio.to_thread(self._sent.posted_in_thread, PLATFORM, channel, reply_in):
                return
            delivery = Delivery(channel, reply_in)
            memory_thread = reply_in
        else:
            return
        if not self._new_event(body, event):
            return
        text = clean_text(event.get("text", ""), context.bot_user_id)
        await self._ask(
            client,
            text,
            user,
            channel,
            memory_thread,
            delivery,
            place_of(channel, reply_in is not None),
            body.get("is_ext_shared_channel"),
        )

    # --- /lore --------------------------------------------------------------------------

    async def on_command(self, ack: Any, command: dict[str, Any], respond: Respond, client: AsyncWebClient) -> None:
        """`/lore <question>`, `/lore help`, `/lore feedback <text>`."""
        text = " ".join(command.get("text", "").split())
        user, channel = command["user_id"], command["channel_id"]
        verb, _, rest = text.partition(" ")
        if not text or verb.lower() == "help":
            await ack(**_ephemeral(render_help(self.command)))
            return
        if verb.lower() == "feedback":
            await ack(**_ephemeral(await self._general_feedback(user, channel, rest)))
            return
        slow_down = self._conversation.admit(PLATFORM, user)
        if slow_down is not None:
            await ack(**_ephemeral(render_notice(slow_down.text)))
            return
        await ack(response_type="ephemeral", text=f"_{PLACEHOLDER_TEXT}_")
        # An ephemeral answer has no thread to follow up in: each /lore stands alone (and no
        # one else's /lore history in the channel reaches this asker).
        thread_id = f"command:{command.get('trigger_id') or uuid.uuid4().hex}"

        async def answer() -> None:
            # Only the asker sees the reply, so their own permissions apply ("Share in
            # channel" re-checks against the channel).
            admission = await self._membership.admit(user)
            if not admission.allowed:
                await post_ephemeral(client, respond, channel, user, render_notice(admission.refusal))
                return
            question = slack_question(text, user, channel, thread_id, "private", admission.email, admission.groups)
            await self._responder.answer_privately(question, user, respond)

        self._workload.spawn(answer(), name="slack-ephemeral")

    async def _general_feedback(self, user: str, channel: str, text: str) -> SlackMessage:
        if not text:
            return render_notice(f"Tell me what to pass on: {self.command} feedback <text>")
        admission = await self._membership.admit(user)
        if not admission.allowed:  # feedback is training signal: colleagues only
            return render_notice(admission.refusal)

        async def store() -> StoredAnswer | None:
            latest = await asyncio.to_thread(self._answers.latest_for, user, channel)
            await self._conversation.record_feedback(
                Feedback(
                    answer_id=latest.id if latest else None,
                    platform=PLATFORM,
                    user_id=user,
                    rating=None,
                    text=text,
                    conversation_id=channel,
                )
            )
            return latest

        try:
            latest = await asyncio.wait_for(store(), _FEEDBACK_ACK_BUDGET)
        except Exception as error:  # the user gets an apology, the log the cause
            return render_notice(self._conversation.failure(error, PLATFORM, "storing feedback").text)
        if latest is None:
            return render_notice("Thanks! Your feedback was passed on to the Lore team.")
        return render_notice("Thanks! Your feedback on my latest answer here was recorded.")

    # --- buttons and modal --------------------------------------------------------------

    async def on_helpful(
        self,
        ack: Any,
        body: dict[str, Any],
        action: dict[str, Any],
        client: AsyncWebClient,
        respond: Respond,
    ) -> None:
        await ack()
        where = _container(body)
        if not await self._admitted_to_rate(body, client, respond):
            return
        await self._rate(body, action, "helpful")
        await post_ephemeral(
            client,
            respond,
            where["channel"],
            body["user"]["id"],
            render_notice("Thanks for the feedback!"),
            where.get("thread_ts"),
        )

    async def on_not_helpful(
        self,
        ack: Any,
        body: dict[str, Any],
        action: dict[str, Any],
        client: AsyncWebClient,
        respond: Respond,
    ) -> None:
        """Store the 👎 at once, then ask what was wrong (the modal may be dismissed)."""
        await ack()
        if not await self._admitted_to_rate(body, client, respond):
            return
        feedback_id = await self._rate(body, action, "not_helpful")
        await client.views_open(trigger_id=body["trigger_id"], view=feedback_modal(action["value"], feedback_id))

    async def on_feedback_submitted(self, ack: Any, body: dict[str, Any], view: dict[str, Any]) -> None:
        await ack()
        metadata = json.loads(view["private_metadata"])
        values = view["state"]["values"]
        wrong = (values[WRONG_BLOCK][INPUT_ACTION].get("value") or "").strip()
        right = (values[RIGHT_BLOCK][INPUT_ACTION].get("value") or "").strip()
        if not wrong and not right:
            return
        # Only onto the submitter's own 👎: the modal names the feedback it belongs to.
        found = await self._conversation.add_feedback_details(metadata["feedback_id"], body["user"]["id"], wrong, right)
        if not found:
            log.warning(
                "feedback %s vanished before its details arrived, or is not %s's",
                metadata["feedback_id"],
                body["user"]["id"],
            )

    async def on_share(
        self,
        ack: Any,
        body: dict[str, Any],
        action: dict[str, Any],
        client: AsyncWebClient,
        respond: Respond,
    ) -> None:
        """Post an ephemeral answer publicly in the channel it was asked in."""
        await ack()
        user = body["user"]["id"]
        channel = _container(body)["channel"]
        admission = await self._membership.admit_in_channel(user, channel)
        if not admission.allowed:
            await respond(text=admission.refusal, response_type="ephemeral", replace_original=False)
            return
        stored = await asyncio.to_thread(self._answers.get, action["value"])
        if stored is None:
            await respond(
                text="That answer is no longer available; ask again to share a fresh one.",
                response_type="ephemeral",
                replace_original=False,
            )
            return
        check = self._access.may_share_documents(
            ((p["path"], p["principals"]) for p in stored.passages if p["given_to_model"]),
            self._access.audience_of(channel),
        )
        if not check.allowed:
            log.info("slack: refused to share answer %s in channel=%s", stored.id, channel)
            await respond(text=check.reason, response_type="ephemeral", replace_original=False)
            return
        # Everything below makes the answer visible to the whole channel.
        content = AnswerContent(
            answer_id=stored.id,
            text=stored.answer,
            citations=tuple(Citation(**citation) for citation in stored.citations),
            evidence=tuple(Evidence(**quote) for quote in stored.evidence),
        )
        messages = render_answer(content, shared_by=user, question=stored.question)
        try:
            posted = await client.chat_postMessage(channel=channel, **messages[0].payload())
        except SlackApiError as error:
            if error.response.get("error") not in ("not_in_channel", "channel_not_found"):
                raise
            await respond(
                text="I can't post in this conversation. Invite me first (/invite @Lore), then share again.",
                response_type="ephemeral",
                replace_original=False,
            )
            return
        for message in messages[1:]:
            await client.chat_postMessage(channel=channel, thread_ts=posted["ts"], **message.payload())
        shared = SentMessage(PLATFORM, channel, posted["ts"], thread_id=posted["ts"], answer_id=stored.id)
        await asyncio.to_thread(self._sent.remember, shared)
        await respond(delete_original=True)

    # --- shared steps -------------------------------------------------------------------

    def _new_event(self, body: dict[str, Any], event: dict[str, Any]) -> bool:
        """False for a retry or duplicate: the same event id, or the same message delivered
        again under another event (a mention arrives as `app_mention` and as `message`)."""
        keys = [f"message:{event['channel']}:{event['ts']}"]
        if body.get("event_id"):
            keys.append(f"event:{body['event_id']}")
        return self._conversation.first_time(*keys)

    def _followups(self, channel: str) -> str:
        return self._settings.channel_followups.get(channel, self._settings.thread_followups)

    async def _ask(
        self,
        client: AsyncWebClient,
        text: str,
        user: str,
        channel: str,
        thread_id: str,
        where: Delivery,
        place: Place,
        ext_shared: bool | None = None,
    ) -> None:
        """`ext_shared`: the event's `is_ext_shared_channel`, when it carried one."""
        if not text:
            await client.chat_postMessage(
                channel=where.channel,
                thread_ts=where.thread_ts,
                **render_help(self.command).payload(),
            )
            return
        slow_down = self._conversation.admit(PLATFORM, user)
        if slow_down is not None:
            await self._tell(client, user, channel, where, render_notice(slow_down.text))
            return

        async def answer() -> None:
            # Refused before anything is retrieved; the asker's e-mail decides what they may
            # read (users.info, cached).
            admission = await self._membership.admit_in_channel(user, channel, ext_shared)
            if not admission.allowed:
                await self._tell(client, user, channel, where, render_notice(admission.refusal))
                return
            question = slack_question(text, user, channel, thread_id, place, admission.email, admission.groups)
            await self._responder.answer_publicly(question, where)

        self._workload.spawn(answer(), name="slack-answer")

    @staticmethod
    async def _tell(client: AsyncWebClient, user: str, channel: str, where: Delivery, notice: SlackMessage) -> None:
        """A notice only `user` sees: in their DM, or ephemeral in a channel."""
        try:
            if channel.startswith("D"):
                await client.chat_postMessage(channel=channel, thread_ts=where.thread_ts, **notice.payload())
            else:
                await client.chat_postEphemeral(
                    channel=channel, user=user, thread_ts=where.thread_ts, **notice.payload()
                )
        except SlackApiError as error:
            log.warning("slack: could not tell user=%s: %s", user, error.response.get("error"))

    async def _admitted_to_rate(self, body: dict[str, Any], client: AsyncWebClient, respond: Respond) -> bool:
        """Only colleagues' ratings are recorded (they may become training data)."""
        user = body["user"]["id"]
        admission = await self._membership.admit(user)
        if not admission.allowed:
            where = _container(body)
            await post_ephemeral(
                client,
                respond,
                where["channel"],
                user,
                render_notice(admission.refusal),
                where.get("thread_ts"),
            )
        return admission.allowed

    async def _rate(self, body: dict[str, Any], action: dict[str, Any], rating: Rating) -> int:
        feedback = Feedback(
            answer_id=action["value"],
            platform=PLATFORM,
            user_id=body["user"]["id"],
            rating=rating,
            conversation_id=_container(body).get("channel"),
        )
        return await self._conversation.record_feedback(feedback)


def _container(body: dict[str, Any]) -> dict[str, Any]:
    """Channel and thread of the message a button was clicked in."""
    container = body.get("container") or {}
    channel = container.get("channel_id") or (body.get("channel") or {}).get("id")
    return {"channel": channel, "thread_ts": container.get("thread_ts")}


def _ephemeral(message: SlackMessage) -> dict[str, Any]:
    return {"response_type": "ephemeral", **message.payload()}
