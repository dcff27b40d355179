"""What a conversation remembers: the thread's earlier turns going into the agent, and the
answer log and thread memory written once the agent has answered."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from bot.core.agent import Agent, DraftCallback, TextCallback
from bot.store.answers import AnswerLog
from bot.store.threads import ThreadMemory
from bot.types import Answer, Question, Turn

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConversationMemory:
    """The answer log and thread memory, read and written on the agent's behalf."""

    answers: AnswerLog
    threads: ThreadMemory

    def history(self, question: Question) -> list[Turn]:
        """The earlier turns of `question`'s thread that may shape its answer, oldest first.

        A private reply may draw on what only this asker may read, so only their own earlier
        turns may shape it: a thread id reused by someone else (`lore ask --as … --thread`)
        never carries another person's private answer into this prompt. Turns in a shared
        place were themselves answered for everyone there (each turn re-checks), so
        everyone's turns stay."""
        turns = self.threads.history(question.platform, question.conversation_id, question.thread_id)
        if question.place == "private":
            return [turn for turn in turns if turn.user_id == question.asker.user_id]
        return turns

    def remember(self, answer: Answer) -> None:
        """Record `answer` in the answer log and add its turn to the thread."""
        question = answer.question
        self.answers.record(answer)
        self.threads.append(
            question.platform,
            question.conversation_id,
            question.thread_id,
            Turn(
                user_id=question.asker.user_id,
                question=question.text,
                answer=answer.text,
                sources=tuple(citation.source for citation in answer.citations),
            ),
        )
        log.info(
            "answer %s confident=%s citations=%s retrieval=%.2fs generation=%.2fs total=%.2fs",
            answer.id,
            answer.confident,
            [c.source for c in answer.citations],
            answer.timings.get("retrieval", 0.0),
            answer.timings.get("generation", 0.0),
            answer.timings.get("total", 0.0),
        )


def answer_and_remember(
    agent: Agent,
    memory: ConversationMemory,
    question: Question,
    on_text: TextCallback | None = None,
    on_draft: DraftCallback | None = None,
) -> Answer:
    """Answer `question` in its thread, then record the answer and remember the turn.
    Blocking: call it from a worker thread in async code."""
    answer = agent.answer(question, memory.history(question), on_text, on_draft)
    memory.remember(answer)
    return answer
