"""Whether the active model writes answers or the agent answers with evidence alone.

A model earns the right to write by measurement: the share of its answers whose own text
passed the grounding check in its last evaluation (`lore eval --generate`, `lore customize
eval`), kept per model and adapter in `<home>/model/writing.json`. The bundled 135M base
model's text never passes it (benchmarks/answer_quality.py), so by default the agent shows
the evidence at once instead of making people wait ~10 s for text that is thrown away."""

from __future__ import annotations

import json
import os
import tempfile
import threading
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from bot.settings import AgentSettings


@dataclass(frozen=True)
class WritingMeasure:
    generated_shown: float  # share of confident answers whose text was the model's own
    questions: int
    measured_at: str


class MeasuredWriting:
    """The last measurement of each (model, adapter), in one small JSON file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def get(self, model: str, adapter: str | None) -> WritingMeasure | None:
        entry = self._read().get(_key(model, adapter))
        return WritingMeasure(**entry) if isinstance(entry, dict) else None

    def record(self, model: str, adapter: str | None, generated_shown: float, questions: int) -> None:
        """Keep this measurement of `model` with `adapter` (None: the base model)."""
        with self._lock:
            data = self._read()
            data[_key(model, adapter)] = asdict(
                WritingMeasure(generated_shown, questions, datetime.now(UTC).isoformat(timespec="seconds"))
            )
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile("w", dir=self.path.parent, delete=False) as handle:
                json.dump(data, handle, indent=1, sort_keys=True)
            os.replace(handle.name, self.path)

    def _read(self) -> dict[str, object]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}


class WritingPolicy:
    """`agent.generate`: "always", "never", or "auto" — the model writes when its last
    measured share of shown text reaches `agent.min_generated_shown`; a model never measured
    does not write (run `lore eval --generate` to measure it)."""

    def __init__(self, settings: AgentSettings, measured: MeasuredWriting) -> None:
        self.settings = settings
        self.measured = measured

    def allows(self, model: str, adapter: str | None) -> bool:
        if self.settings.generate != "auto":
            return self.settings.generate == "always"
        measure = self.measured.get(model, adapter)
        return measure is not None and measure.generated_shown >= self.settings.min_generated_shown


def measured_writing(home: Path) -> MeasuredWriting:
    """The measurements of the models answering from `home`."""
    return MeasuredWriting(home / "model" / "writing.json")


def _key(model: str, adapter: str | None) -> str:
    return f"{model}|{adapter or 'base'}"
