"""The Teams bot: decides what each incoming activity asks for and answers it through the core
agent. Questions are answered in the background so the HTTP request is acknowledged at once
(the Bot Framework gives a bot 15 seconds and then retries); a typing indicator runs meanwhile.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import time
from dataclasses import replace
from typing import TYPE_CHECKING

from botbuilder.core import ActivityHandler, InvokeResponse, TurnContext
from botbuilder.schema import Activity, ActivityTypes, ChannelAccount, ResourceResponse

from bot.conversation.service import ConversationService, Notice
from bot.platforms.teams import replies
from bot.platforms.teams.feedback_input import (
    SUBMIT_ACTION_INVOKE,
    MalformedFeedbackError,
    from_card_submit,
    from_submit_action,
    is_card_feedback,
)
from bot.platforms.teams.membership import REFUSAL as OTHER_TENANT_REFUSAL
from bot.platforms.teams.membership import TenantAllowList
from bot.platforms.teams.questions import (
    mentions_bot,
    parse_request,
    question_for,
    text_without_bot_mention,
    where,
)
from bot.platforms.teams.rendering import (
    answer_activities,
    streamed_final_activity,
    text_activity,
)
from bot.platforms.teams.streaming import UPDATE_INTERVAL_SECONDS, TeamsStream
from bot.platforms.teams.users import TeamsEmails
from bot.server import Workload
from bot.store.feedback import Feedback
from bot.store.sent_messages import SentMessage, SentMessages
from bot.types import Answer, Question

if TYPE_CHECKING:
    from bot.store.answers import AnswerLog

log = logging.getLogger(__name__)

TYPING_INTERVAL_SECONDS = 3.0  # Teams shows a typing indicator for about 3 s
FEEDBACK_WAIT_SECONDS = 5.0
PLATFORM = "teams"


class LoreTeamsBot(ActivityHandler):
    """Personal chat: every message is a question. Group chats and channels: only messages
    that @mention the bot. "help", "feedback <text>" and "ask <question>" are commands."""

    def __init__(
        self,
        conversation: ConversationService,
        answers: AnswerLog,
        sent: SentMessages,
        workload: Workload,
        emails: TeamsEmails,
        tenants: TenantAllowList,
        *,
        typing_interval: float = TYPING_INTERVAL_SECONDS,
        stream_interval: float | None = UPDATE_INTERVAL_SECONDS,
    ) -> None:
        """`emails` finds each asker's e-mail (their permissions); `tenants` says whose users
        are answered at all; `stream_interval`: seconds between streamed updates in personal
        chats; None turns streaming off (typing indicator and one reply everywhere)."""
        self._conversation = conversation
        self._answers = answers
        self._sent = sent
        self._workload = workload
        self._emails = emails
        self._tenants = tenants
        self._typing_interval = typing_interval
        self._stream_interval = stream_interval
        self._in_flight: dict[asyncio.Task[None], str] = {}  # answer task → conversation id

    async def on_turn(self, turn_context: TurnContext) -> None:
        """Users of other tenants get a polite refusal before anything is looked up or
        retrieved; their feedback invokes a 403."""
        activity = turn_context.activity
        if self._tenants.admits(activity):
            await super().on_turn(turn_context)
            return
        log.info(
            "teams: refused %s activity %s from another tenant (conversation %s)",
            activity.type,
            activity.id,
            activity.conversation.id,
        )
        if activity.type == ActivityTypes.message:
            await turn_context.send_activity(text_activity(OTHER_TENANT_REFUSAL))
        elif activity.type == ActivityTypes.invoke:
            await turn_context.send_activity(
                Activity(type=ActivityTypes.invoke_response, value=InvokeResponse(status=403))
            )

    async def on_message_activity(self, turn_context: TurnContext) -> None:
        activity = turn_context.activity
        if self._is_redelivery(activity):
            log.info("teams: ignoring redelivered activity %s", activity.id)
            return
        if is_card_feedback(activity):
            await self._record_card_feedback(turn_context)
            return
        place = where(activity)
        if place.scope != "personal" and not mentions_bot(activity):
            return  # group chats and channels: only messages addressed to the bot
        request = parse_request(text_without_bot_mention(activity))
        if request.command == "help":
            await turn_context.send_activity(text_activity(replies.help_text(place.scope)))
        elif request.command == "feedback":
            await self._record_text_feedback(turn_context, request.text)
        elif not request.text:
            await turn_context.send_activity(text_activity(replies.EMPTY_QUESTION))
        else:
            question = question_for(activity, request.text)
            slow_down = self._conversation.admit(PLATFORM, question.asker.user_id)
            if slow_down is not None:
                await turn_context.send_activity(text_activity(slow_down.text))
                return
            stream = await self._open_stream(turn_context) if place.scope == "personal" else None
            if stream is None:
                await turn_context.send_activity(Activity(type=ActivityTypes.typing))
            # The server's workload reports queue depth and finishes the answer on shutdown.
            task = self._workload.spawn(self._answer(turn_context, question, stream), name="teams-answer")
            self._in_flight[task] = question.conversation_id
            task.add_done_callback(lambda done: self._in_flight.pop(done, None))

    async def _open_stream(self, turn_context: TurnContext) -> TeamsStream | None:
        """Teams streams replies only in personal chats; elsewhere: typing, then one reply."""
        if self._stream_interval is None:
            return None
        stream = TeamsStream(turn_context, self._stream_interval)
        return stream if await stream.start() else None

    async def on_members_added_activity(self, members_added: list[ChannelAccount], turn_context: TurnContext) -> None:
        bot_id = turn_context.activity.recipient.id
        if any(member.id == bot_id for member in members_added):
            scope = where(turn_context.activity).scope
            await turn_context.send_activity(text_activity(replies.welcome_text(scope)))

    async def on_invoke_activity(self, turn_context: TurnContext) -> InvokeResponse | None:
        # Teams' built-in feedback is not routed by botbuilder's handlers (see STACK-NOTES).
        if turn_context.activity.name != SUBMIT_ACTION_INVOKE:
            return await super().on_invoke_activity(turn_context)
        activity = turn_context.activity
        try:
            answer_id = await self._answer_shown_by(activity)
            await self._store(from_submit_action(activity, answer_id))
        except MalformedFeedbackError as error:
            log.warning("teams: rejected feedback invoke %s: %s", activity.id, error)
            return InvokeResponse(status=400)
        except Exception as error:
            self._conversation.failure(error, PLATFORM, f"storing feedback invoke {activity.id}")
            return InvokeResponse(status=500)
        # A plain-dict body breaks botbuilder's serialization; an empty 200 is what Teams wants.
        return InvokeResponse(status=200)

    async def _answer_shown_by(self, activity: Activity) -> str | None:
        """The answer id of the message a feedback invoke refers to (its `replyToId`)."""
        if not activity.reply_to_id:
            return None
        conversation_id = where(activity).conversation_id
        answer_id = await asyncio.to_thread(self._sent.answer_id, PLATFORM, conversation_id, activity.reply_to_id)
        pending = {task for task, where_id in self._in_flight.items() if where_id == conversation_id}
        if answer_id is None and pending:
            # The rating can arrive between an answer's send and our note of its message id.
            await asyncio.wait(pending, timeout=FEEDBACK_WAIT_SECONDS)
            answer_id = await asyncio.to_thread(self._sent.answer_id, PLATFORM, conversation_id, activity.reply_to_id)
        return answer_id

    async def _answer(self, turn_context: TurnContext, question: Question, stream: TeamsStream | None) -> None:
        typing = None if stream else asyncio.create_task(self._keep_typing(turn_context))
        started = time.monotonic()
        try:
            # Looked up here, not before acknowledging: the roster call can take a moment.
            email = await self._emails.email_of(turn_context)
            question = replace(question, asker=replace(question.asker, email=email))
            drafted: _Draft | None = None
            if stream is None:
                drafted = _Draft(turn_context)
                on_draft = drafted.post
            else:
                on_draft = stream.on_draft
            answer = await self._conversation.ask(question, stream.on_text if stream else None, on_draft)
            if typing:
                typing.cancel()
            if isinstance(answer, Notice):
                await self._reply_safely(turn_context, answer.text, stream)
                return
            if stream:
                messages = [await stream.finish(streamed_final_activity(answer))]
            else:
                messages = answer_activities(answer)
            message_ids = [stream.stream_id] if stream and stream.stream_id else []
            if drafted is not None and (draft_id := await drafted.sent_id()) is not None:
                # The drafted card is edited into the final answer rather than sent again.
                first, *messages = messages
                first.id = draft_id
                await turn_context.update_activity(first)
                message_ids.append(draft_id)
            for message in messages:
                sent = await turn_context.send_activity(message)
                if sent is not None and sent.id:
                    message_ids.append(sent.id)
            for message_id in dict.fromkeys(message_ids):
                shown = SentMessage(PLATFORM, question.conversation_id, message_id, answer_id=answer.id)
                await asyncio.to_thread(self._sent.remember, shown)
            log.info(
                "teams answer %s conversation=%s thread=%s user=%s confident=%s messages=%d "
                "streamed=%s retrieval=%.2fs generation=%.2fs total=%.2fs",
                answer.id,
                question.conversation_id,
                question.thread_id,
                question.asker.user_id,
                answer.confident,
                len(messages),
                stream is not None,
                answer.timings.get("retrieval", 0.0),
                answer.timings.get("generation", 0.0),
                time.monotonic() - started,
            )
        except Exception as error:  # a failed delivery: an apology with the error id
            notice = self._conversation.answer_failure(error, question)
            await self._reply_safely(turn_context, notice.text, stream)
        finally:
            if typing:
                typing.cancel()

    async def _keep_typing(self, turn_context: TurnContext) -> None:
        while True:
            await asyncio.sleep(self._typing_interval)
            try:
                await turn_context.send_activity(Activity(type=ActivityTypes.typing))
            except Exception as error:  # a lost typing indicator is not worth failing the answer
                log.debug("teams: typing indicator failed: %s", error)
                return

    async def _reply_safely(self, turn_context: TurnContext, text: str, stream: TeamsStream | None) -> None:
        try:
            message = text_activity(text)
            # A started stream must be ended, or Teams keeps showing the partial answer.
            await turn_context.send_activity(await stream.finish(message) if stream else message)
        except Exception:
            log.exception("teams: could not send a reply to %s", turn_context.activity.conversation.id)

    async def _record_text_feedback(self, turn_context: TurnContext, text: str) -> None:
        if not text:
            await turn_context.send_activity(text_activity(replies.FEEDBACK_NEEDS_TEXT))
            return
        activity = turn_context.activity
        question = question_for(activity, text)
        latest = await asyncio.to_thread(self._answers.latest_for, question.asker.user_id, question.conversation_id)
        await self._store(
            Feedback(
                answer_id=latest.id if latest else None,
                platform="teams",
                user_id=question.asker.user_id,
                rating=None,
                text=text,
                conversation_id=question.conversation_id,
            )
        )
        await turn_context.send_activity(text_activity(replies.feedback_thanks(latest is not None)))

    async def _record_card_feedback(self, turn_context: TurnContext) -> None:
        try:
            feedback = from_card_submit(turn_context.activity)
        except MalformedFeedbackError as error:
            log.warning("teams: ignored card feedback %s: %s", turn_context.activity.id, error)
            return
        await self._store(feedback)
        await turn_context.send_activity(text_activity(replies.feedback_thanks(feedback.answer_id is not None)))

    async def _store(self, feedback: Feedback) -> None:
        await self._conversation.record_feedback(feedback)

    def _is_redelivery(self, activity: Activity) -> bool:
        if not activity.id:
            return False
        return not self._conversation.first_time(f"teams:{activity.conversation.id}:{activity.id}")


class _Draft:
    """Sends the drafted answer (the excerpts, ready before the model writes) as soon as the
    agent has it, from the agent's worker thread; its message is later edited into the final
    answer."""

    def __init__(self, turn_context: TurnContext) -> None:
        self._context = turn_context
        self._loop = asyncio.get_running_loop()
        self._sending: concurrent.futures.Future[ResourceResponse | None] | None = None

    def post(self, draft: Answer) -> None:
        first = answer_activities(draft)[0]
        self._sending = asyncio.run_coroutine_threadsafe(self._context.send_activity(first), self._loop)

    async def sent_id(self) -> str | None:
        """The drafted message's id, None when there was no draft or it could not be sent."""
        if self._sending is None:
            return None
        try:
            sent = await asyncio.wrap_future(self._sending)
        except Exception as error:  # the final answer is then sent as a new message
            log.warning("teams: the drafted answer could not be sent: %s", error)
            return None
        return sent.id if sent is not None and sent.id else None
