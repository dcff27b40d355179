"""The chart `lore customize eval` saves beside the adapter (`evaluation.png`): how training went
(train loss per step, validation loss at each validation) and base model vs adapter on the
headline metrics, so whoever decides on `lore customize promote` sees both at a glance.

Drawn with matplotlib's Agg canvas and no pyplot: no display, no global figure state, safe in
a server process.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.axes import Axes

CHART_FILE = "evaluation.png"
RATE_METRICS = ("answer_accuracy", "citation_accuracy", "abstention")
SIDES = ("base", "adapter")
BAR_WIDTH = 0.38


def save_evaluation_chart(metadata: Mapping[str, Any], path: Path, name: str = "adapter") -> Path:
    """Draw adapter `name`'s lore.json `metadata` (its `loss_curve`, `validation_curve` and
    stored `evaluation`) as a two-panel PNG at `path`; returns `path`. Missing parts leave a
    note in their panel instead of failing: an adapter trained elsewhere has no curves."""
    # Imported here: matplotlib takes a while to import and only this command draws.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    figure = Figure(figsize=(11, 4.5), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    losses, metrics = figure.subplots(1, 2)
    losses.xaxis.set_major_locator(MaxNLocator(integer=True))  # steps are whole numbers
    _loss_panel(losses, metadata.get("loss_curve") or [], metadata.get("validation_curve") or [])
    evaluation = metadata.get("evaluation") or {}
    _metrics_panel(metrics, evaluation, name)
    questions = evaluation.get("questions")
    figure.suptitle(f"{name}" + (f": {questions} test questions" if questions else ""))
    path.parent.mkdir(parents=True, exist_ok=True)
    # Written beside and renamed: a reader never opens a half-written image.
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".png", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as file:
            figure.savefig(file, format="png")
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def _loss_panel(axes: Axes, train: Sequence[Any], validation: Sequence[Any]) -> None:
    axes.set_title("Training loss")
    axes.set_xlabel("optimizer step")
    axes.set_ylabel("loss")
    train_points, validation_points = _points(train), _points(validation)
    if train_points:
        steps, values = zip(*train_points, strict=True)
        axes.plot(steps, values, color="tab:blue", linewidth=1.5, label="train")
    if validation_points:
        steps, values = zip(*validation_points, strict=True)
        axes.plot(steps, values, "o", color="tab:orange", markersize=6, label="validation")
    if train_points or validation_points:
        axes.legend()
        axes.grid(alpha=0.3)
    else:
        _note(axes, "lore.json holds no loss curve")


def _metrics_panel(axes: Axes, evaluation: Mapping[str, Any], name: str) -> None:
    axes.set_title("Base model vs adapter (held-out test split)")
    axes.set_ylim(0, 1.12)
    axes.set_ylabel("share of questions")
    positions = range(len(RATE_METRICS))
    axes.set_xticks(list(positions), [metric.replace("_", " ") for metric in RATE_METRICS])
    axes.set_xlim(-0.6, len(RATE_METRICS) - 0.4)
    if not any(evaluation.get(side) for side in SIDES):
        _note(axes, f"not evaluated yet: run `lore customize eval --adapter {name}`")
        return
    for offset, side, color in ((-BAR_WIDTH / 2, "base", "tab:gray"), (BAR_WIDTH / 2, "adapter", "tab:green")):
        scores = evaluation.get(side) or {}
        values = [_number(scores.get(metric)) for metric in RATE_METRICS]
        bars = axes.bar(
            [position + offset for position in positions],
            [value or 0.0 for value in values],
            BAR_WIDTH,
            color=color,
            label=f"{'base' if side == 'base' else name} (latency p50 {_seconds(scores.get('latency_p50'))})",
        )
        axes.bar_label(bars, labels=["n/a" if v is None else f"{v:.2f}" for v in values], padding=2, fontsize=8)
    axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.1), ncols=2, frameon=False)


def _points(curve: Sequence[Any]) -> list[tuple[float, float]]:
    """The [step, loss] pairs of a curve, leaving out any entry that is not one."""
    points = []
    for entry in curve:
        if isinstance(entry, (list, tuple)) and len(entry) == 2:
            step, loss = _number(entry[0]), _number(entry[1])
            if step is not None and loss is not None:
                points.append((step, loss))
    return points


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _seconds(value: Any) -> str:
    number = _number(value)
    return "n/a" if number is None else f"{number:.2f} s"


def _note(axes: Axes, text: str) -> None:
    axes.text(0.5, 0.5, text, ha="center", va="center", transform=axes.transAxes, color="dimgray")
