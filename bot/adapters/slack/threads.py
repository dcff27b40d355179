"""Moved to `bot.store.slack_threads`. Kept only for `handlers.py` and `responder.py`, which
the conversation-service part of #15 rewrites; delete once they import the new path."""

from bot.store.slack_threads import AnsweredThreads

__all__ = ["AnsweredThreads"]
