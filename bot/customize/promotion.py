"""Which adapter answers: promote one that beats the one answering now, list them, roll back.

Promotion compares the candidate's stored evaluation (written into its lore.json by
`lore customize eval`) with the active model's: the active adapter's own stored score, or,
with no adapter active, the base model's score measured beside the candidate. The registry's
marker records the promoted adapter for every process (`bot.adapter_registry`);
`promotions.json` in the adapters folder of the machine that promotes is the stack of
promotions `rollback` pops.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.model.adapters import METADATA_FILE, AdapterRegistry
from knowledge.errors import LoreError

HISTORY_FILE = "promotions.json"
METRICS = ("answer_accuracy", "citation_accuracy", "abstention")


class PromotionError(LoreError):
    """An adapter cannot be promoted, or there is nothing to roll back."""


@dataclass(frozen=True)
class AdapterSummary:
    name: str
    created: str | None
    metrics: dict[str, Any]  # training metrics and, once evaluated, `evaluation`
    active: bool

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "created": self.created, "metrics": self.metrics, "active": self.active}


@dataclass(frozen=True)
class Promotion:
    name: str
    previous: str | None
    metric: str
    score: float | None
    beaten: float | None  # the active model's score it was compared with
    forced: bool


def list_adapters(registry: AdapterRegistry) -> list[AdapterSummary]:
    """Every adapter, oldest first, with its metrics and whether it answers now."""
    active = registry.active()
    found = []
    for name in registry.list():
        info = registry.info(name)
        metrics = dict(info.metadata.get("metrics") or {})
        if "evaluation" in info.metadata:
            metrics["evaluation"] = info.metadata["evaluation"]
        found.append(AdapterSummary(name, info.created.isoformat() if info.created else None, metrics, name == active))
    return found


def store_evaluation(registry: AdapterRegistry, name: str, evaluation: dict[str, Any]) -> None:
    """Write `evaluation` ({"base": {...}, "adapter": {...}, ...}) into the adapter's lore.json."""
    path = registry.path(name) / METADATA_FILE
    metadata = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    metadata["evaluation"] = evaluation
    _write_json(path, metadata)


def promote(registry: AdapterRegistry, name: str, metric: str = "answer_accuracy", force: bool = False) -> Promotion:
    """Make `name` the answering adapter if its stored `metric` beats the active model's
    (strictly), or unconditionally with `force`."""
    if metric not in METRICS:
        raise PromotionError(f"Unknown metric {metric!r}: choose one of {', '.join(METRICS)}.")
    previous = registry.active()
    if previous == name:
        raise PromotionError(f"Adapter {name!r} is already the active one.")
    score = _score(registry, name, metric, "adapter")
    beaten = _score(registry, previous, metric, "adapter")
    if beaten is None:  # no adapter active, or one never evaluated: the base model's score
        beaten = _score(registry, name, metric, "base")
    if not force:
        if score is None:
            raise PromotionError(
                f"Adapter {name!r} has no stored {metric}: run `lore customize eval --adapter {name}` "
                "first, or promote it anyway with --force."
            )
        if beaten is not None and score <= beaten:
            against = (
                f"adapter {previous!r}"
                if _score(registry, previous, metric, "adapter") is not None
                else "the base model"
            )
            raise PromotionError(
                f"Adapter {name!r} does not beat {against} on {metric} ({score:.3f} vs {beaten:.3f}); "
                "not promoted. Use --force to promote it anyway."
            )
    registry.set_active(name)
    history = _history(registry)
    if not history or history[-1] != previous:
        history.append(previous)  # the state before, also when ACTIVE was set by hand
    history.append(name)
    _write_json(registry.directory / HISTORY_FILE, history)
    return Promotion(name, previous, metric, score, beaten, force)


def rollback(registry: AdapterRegistry) -> str | None:
    """Return to the model that answered before the last promotion; returns its name (None:
    the base model)."""
    history = _history(registry)
    if len(history) < 2:
        raise PromotionError("Nothing to roll back: no adapter has been promoted with `lore customize promote`.")
    history.pop()
    previous = history[-1]
    if previous is not None and previous not in registry.list():
        raise PromotionError(
            f"The previous adapter {previous!r} no longer exists; promote another with `lore customize promote NAME`."
        )
    registry.set_active(previous)
    _write_json(registry.directory / HISTORY_FILE, history)
    return previous


def rollback_target(registry: AdapterRegistry) -> str | None:
    """The adapter `rollback` would return to (None: the base model, or nothing to roll back)."""
    history = _history(registry)
    return history[-2] if len(history) >= 2 else None


def _score(registry: AdapterRegistry, name: str | None, metric: str, side: str) -> float | None:
    if name is None:
        return None
    evaluation = registry.info(name).metadata.get("evaluation") or {}
    value = (evaluation.get(side) or {}).get(metric)
    return float(value) if isinstance(value, (int, float)) else None


def _history(registry: AdapterRegistry) -> list[str | None]:
    path = registry.directory / HISTORY_FILE
    if not path.is_file():
        return []
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as error:
        raise PromotionError(f"{path} is damaged ({error}): delete it; promotion history restarts.") from error
    return [item if isinstance(item, str) else None for item in data] if isinstance(data, list) else []


def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(handle, "w", encoding="utf-8") as file:
        json.dump(data, file, indent=2)
    os.replace(temporary, path)
