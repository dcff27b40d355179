"""One conversation core for every platform: a platform adapter parses an event into a
`Question`, asks here, and renders what comes back (an `Answer`, or a `Notice` when there is
none). Running the agent off the event loop with back-pressure, error ids, apologies, the
busy and slow-down texts, de-duplication, rate limits and feedback recording live here once."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from bot.conversation.dedupe import RecentKeys, SeenKeys
from bot.conversation.memory import ConversationMemory, answer_and_remember
from bot.conversation.rate_limit import Limiter, RateLimiter
from bot.core.agent import DraftCallback, TextCallback
from bot.errors import BusyError
from bot.store.feedback import Feedback, FeedbackStore
from bot.types import Answer, Question

if TYPE_CHECKING:
    from bot.core.agent import Agent

log = logging.getLogger(__name__)

# Questions answered at once; more wait their turn (the model generates one at a time anyway).
ANSWER_WORKERS = 4
# Questions that may wait for a worker; past this the asker is told the bot is busy, rather
# than waiting minutes behind a queue nobody sees.
MAX_WAITING = 64
BUSY_TEXT = "I'm answering many questions right now. Please ask again in a minute."


def apology(error_id: str) -> str:
    """A short apology with the id under which the failure is logged."""
    return (
        "Sorry, something went wrong while I was answering. Please try again in a moment; "
        f"if it keeps happening, tell your admin the error id `{error_id}`."
    )


def slow_down_text(wait_seconds: float) -> str:
    """What a user over the rate limit is told."""
    return (
        "You're asking faster than I can keep up with. "
        f"Please wait about {max(1, round(wait_seconds))} seconds and ask again."
    )


def new_error_id() -> str:
    """The id a failure is logged under and the user is shown."""
    return uuid.uuid4().hex[:10]


@dataclass(frozen=True)
class Notice:
    """What the asker is told instead of an answer: busy, slow down, or an apology."""

    text: str
    error_id: str | None = None  # set for failures: the id in the log
    # The failure behind it, for a caller whose user is the operator (`lore ask` shows a
    # LoreError's own message); never shown on a chat platform.
    cause: BaseException | None = field(default=None, compare=False, repr=False)


def _in_process_limiter(_platform: str, limit: int) -> Limiter:
    return RateLimiter(limit)


class ConversationService:
    """Answers questions for every platform and keeps what the conversation leaves behind.
    Call `close` to stop the workers."""

    def __init__(
        self,
        agent: Agent,
        memory: ConversationMemory,
        feedback: FeedbackStore,
        rate_limits: Mapping[str, int],
        *,
        workers: int = ANSWER_WORKERS,
        max_waiting: int = MAX_WAITING,
        seen: SeenKeys | None = None,
        limiter: Callable[[str, int], Limiter] = _in_process_limiter,
    ) -> None:
        """`rate_limits`: questions per user per minute, by platform (a platform not named
        is not limited). `seen` (default: in this process) remembers the deliveries handled
        and `limiter(platform, limit)` counts questions; the service builder passes the
        database-backed ones when several replicas share the database."""
        self.agent = agent
        self.memory = memory
        self._feedback = feedback
        self._limiters = {platform: limiter(platform, limit) for platform, limit in rate_limits.items()}
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="answer")
        self._capacity = workers + max_waiting
        self._asked = 0  # questions running or waiting; only touched on the event loop
        self._recent = seen if seen is not None else RecentKeys()

    def first_time(self, *keys: str) -> bool:
        """Record a platform's delivery keys; False when one was seen before (a retry)."""
        return self._recent.first_time(*keys)

    def admit(self, platform: str, user_id: str) -> Notice | None:
        """Count a question by `user_id`; the slow-down notice when they are over the limit."""
        limiter = self._limiters.get(platform)
        if limiter is None or limiter.allow(user_id):
            return None
        log.info("%s: user %s is over the rate limit", platform, user_id)
        return Notice(slow_down_text(limiter.retry_after(user_id)))

    async def ask(
        self,
        question: Question,
        on_text: TextCallback | None = None,
        on_draft: DraftCallback | None = None,
    ) -> Answer | Notice:
        """Answer `question` in a worker thread after its thread's history, then record the
        answer and remember the turn. A full queue or a busy model gives the busy notice, any
        other failure an apology with an error id (logged with the cause)."""
        if self._asked >= self._capacity:
            log.warning(
                "%s: %d questions in hand; asked user=%s to retry",
                question.platform,
                self._asked,
                question.asker.user_id,
            )
            return Notice(BUSY_TEXT)
        self._asked += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(
                self._executor, answer_and_remember, self.agent, self.memory, question, on_text, on_draft
            )
        except Exception as error:  # every failure becomes a notice the asker can act on
            return self.answer_failure(error, question)
        finally:
            self._asked -= 1

    def failure(self, error: BaseException, platform: str, doing: str) -> Notice:
        """The notice for a failure while `doing` something on `platform` (answering,
        delivering, storing feedback); logged here with the cause and the error id shown."""
        if isinstance(error, BusyError):
            log.warning("%s: model busy while %s; asked to retry", platform, doing)
            return Notice(BUSY_TEXT, cause=error)
        error_id = new_error_id()
        log.error("%s: %s failed error_id=%s", platform, doing, error_id, exc_info=error)
        return Notice(apology(error_id), error_id, cause=error)

    def answer_failure(self, error: BaseException, question: Question) -> Notice:
        """`failure` while answering or delivering the answer to `question`."""
        doing = (
            f"answering conversation={question.conversation_id} user={question.asker.user_id} "
            f"thread={question.thread_id}"
        )
        return self.failure(error, question.platform, doing)

    async def record_feedback(self, feedback: Feedback) -> int:
        """Store `feedback` (whose ratings may train: bot.store.feedback); returns its id."""
        feedback_id = await asyncio.to_thread(self._feedback.record, feedback)
        log.info(
            "%s feedback %s answer=%s user=%s rating=%s",
            feedback.platform,
            feedback_id,
            feedback.answer_id,
            feedback.user_id,
            feedback.rating,
        )
        return feedback_id

    async def add_feedback_details(self, feedback_id: int, user_id: str, text: str, correction: str) -> bool:
        """Attach what was wrong and the right answer to `user_id`'s own earlier feedback;
        False when it is unknown or someone else's (bot.store.feedback)."""
        return await asyncio.to_thread(self._feedback.add_details, feedback_id, user_id, text, correction)

    def close(self) -> None:
        """Stop taking questions; answers in progress finish in their threads."""
        self._executor.shutdown(wait=False)
