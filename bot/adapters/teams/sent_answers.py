"""Moved to `bot.store.teams_sent_answers`. Kept only for `handler.py`, which the
conversation-service part of #15 rewrites; delete once it imports the new path."""

from bot.store.teams_sent_answers import SentAnswers

__all__ = ["SentAnswers"]
