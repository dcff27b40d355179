"""Moved to `bot.types`. Kept only for modules the other parts of #15 rewrite (the agent, the
platform adapters, evaluation); delete once they import `bot.types`."""

from bot.types import Answer, Asker, Citation, Evidence, Place, Platform, Question

__all__ = ["Answer", "Asker", "Citation", "Evidence", "Place", "Platform", "Question"]
