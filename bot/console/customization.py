"""The Customization page: datasets (their cards), adapters with their loss curves and the
evaluation of base model vs adapter, and promote / rollback with the CLI's own rules
(`bot.customize.promotion`); plus the retraining schedule and how its last run ended."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bot.console.charts import line_chart, paired_bars
from bot.customize.dataset import CARD_FILE
from bot.customize.promotion import HISTORY_FILE, list_adapters, promote, rollback, rollback_target
from bot.customize.retrain import STATE_FILE
from bot.model.adapters import AdapterRegistry
from bot.settings import LoreSettings

RATE_METRICS = ("answer_accuracy", "citation_accuracy", "abstention")
SHOWN_DATASETS = 10


def customization(settings: LoreSettings, registry: AdapterRegistry) -> dict[str, Any]:
    """Datasets newest first, adapters newest first with charts, the schedule and last run;
    the adapters those of `registry` (`bot.adapter_registry`)."""
    adapters = []
    for summary in reversed(list_adapters(registry)):
        metadata = registry.info(summary.name).metadata
        evaluation = summary.metrics.get("evaluation") or {}
        adapters.append(
            {
                **summary.to_dict(),
                "dataset": (metadata.get("dataset") or {}).get("hash"),
                "loss_chart": line_chart(
                    [
                        ("train", _points(metadata.get("loss_curve"))),
                        ("validation", _points(metadata.get("validation_curve"))),
                    ],
                    "Loss",
                ),
                "evaluation_chart": paired_bars(
                    [
                        (
                            metric.replace("_", " "),
                            _number((evaluation.get("base") or {}).get(metric)),
                            _number((evaluation.get("adapter") or {}).get(metric)),
                        )
                        for metric in RATE_METRICS
                    ],
                    ("base model", summary.name),
                    "Held-out test split",
                )
                if evaluation
                else "",
            }
        )
    return {
        "active": registry.active(),
        "rollback_to": rollback_target(registry),
        "can_roll_back": _can_roll_back(registry),
        "promote_metric": settings.customize.promote_metric,
        "adapters": adapters,
        "datasets": _datasets(settings.home / "datasets"),
        "retraining": {
            "min_feedback": settings.customize.retrain_min_feedback,
            "cron": settings.customize.retrain_cron if settings.customize.retrain_min_feedback > 0 else None,
            "last_run": _json(settings.home / "customize" / STATE_FILE),
        },
    }


def promote_adapter(settings: LoreSettings, registry: AdapterRegistry, name: str) -> str:
    """Promote `name` if its stored evaluation beats the active model's (never forced here:
    `lore customize promote --force` stays a deliberate CLI act). Raises PromotionError."""
    done = promote(registry, name, metric=settings.customize.promote_metric)
    return (
        f"adapter {done.name} promoted ({done.metric} {done.score:.3f} vs {done.beaten:.3f})"
        if done.beaten is not None and done.score is not None
        else f"adapter {done.name} promoted"
    )


def roll_back(registry: AdapterRegistry) -> str:
    """Return to the model that answered before the last promotion. Raises PromotionError."""
    previous = rollback(registry)
    return f"rolled back: {previous or 'the base model'} answers now"


def _can_roll_back(registry: AdapterRegistry) -> bool:
    path = registry.directory / HISTORY_FILE
    history = _json(path)
    return isinstance(history, list) and len(history) >= 2


def _datasets(folder: Path) -> list[dict[str, Any]]:
    cards = []
    for card_file in sorted(folder.glob(f"*/{CARD_FILE}"), reverse=True)[:SHOWN_DATASETS]:
        card = _json(card_file)
        if isinstance(card, dict):
            cards.append(
                {
                    "name": card_file.parent.name,
                    "created": card.get("created"),
                    "splits": card.get("splits") or {},
                    "by_kind": card.get("by_kind") or {},
                    "documents": card.get("documents") or {},
                    "gaps": len(card.get("gaps") or []),
                    "hash": card.get("hash"),
                }
            )
    return cards


def _points(curve: Any) -> list[tuple[float, float]]:
    points = []
    for entry in curve or []:
        if isinstance(entry, (list, tuple)) and len(entry) == 2:
            step, value = _number(entry[0]), _number(entry[1])
            if step is not None and value is not None:
                points.append((step, value))
    return points


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
