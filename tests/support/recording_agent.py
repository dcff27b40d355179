"""The real agent behind a recorder: tests assert which questions reached it (none, when a
refusal must come before any retrieval)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from bot.types import Answer, Question, Turn


class RecordingAgent:
    """The real agent, keeping every question it was asked."""

    def __init__(self, agent: Any) -> None:
        self._agent = agent
        self._lock = threading.Lock()
        self.questions: list[Question] = []

    def answer(
        self,
        question: Question,
        history: Sequence[Turn],
        on_text: Callable[[str], None] | None = None,
        on_draft: Callable[[Answer], None] | None = None,
    ) -> Answer:
        with self._lock:
            self.questions.append(question)
        result: Answer = self._agent.answer(question, history, on_text, on_draft)
        return result

    def write_with_the_model(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Make the real agent have its model write every answer (for this test only)."""
        monkeypatch.setattr(self._agent, "writes", None)
