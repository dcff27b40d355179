"""The evaluation chart drawn from adapter metadata shaped like the lore.json training writes
(the CLI test draws one from a real training run)."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

from PIL import Image

from bot.customize.chart import save_evaluation_chart

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TRAIN_BLUE = (31, 119, 180)  # matplotlib's tab:blue, the train loss line
VALIDATION_ORANGE = (255, 127, 14)  # tab:orange, the validation points
ADAPTER_GREEN = (44, 160, 44)  # tab:green, the adapter's bars


def metadata(adapter_accuracy: float = 0.6, **changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "metrics": {"steps": 6, "validation_loss": 1.8},
        "loss_curve": [[1, 2.31], [2, 2.12], [3, 1.95], [4, 1.83], [5, 1.71], [6, 1.64]],
        "validation_curve": [[3, 2.02], [6, 1.8]],
        "evaluation": {
            "base": {"answer_accuracy": 0.2, "citation_accuracy": 0.5, "abstention": None, "latency_p50": 1.23},
            "adapter": {
                "answer_accuracy": adapter_accuracy,
                "citation_accuracy": 0.8,
                "abstention": 1.0,
                "latency_p50": 1.5,
            },
            "questions": 12,
        },
    }
    data.update(changes)
    return data


def png_size(path: Path) -> tuple[int, int]:
    raw = path.read_bytes()
    assert raw[:8] == PNG_SIGNATURE and raw[12:16] == b"IHDR"
    return struct.unpack(">II", raw[16:24])


def pixels_like(path: Path, color: tuple[int, int, int], half: str) -> int:
    """How many pixels of the left or right half are (nearly) `color`."""
    image = Image.open(path).convert("RGB")
    width, height = image.size
    box = (0, 0, width // 2, height) if half == "left" else (width // 2, 0, width, height)
    return sum(
        1
        for pixel in image.crop(box).get_flattened_data()
        if all(abs(channel - wanted) <= 6 for channel, wanted in zip(pixel, color, strict=True))
    )


def test_the_chart_is_a_png_with_both_panels_drawn(tmp_path: Path) -> None:
    path = save_evaluation_chart(metadata(), tmp_path / "v1" / "evaluation.png", "v1")
    assert path == tmp_path / "v1" / "evaluation.png"
    width, height = png_size(path)
    assert 800 <= width <= 2000 and 300 <= height <= 1000
    assert 10_000 < path.stat().st_size < 1_000_000
    assert pixels_like(path, TRAIN_BLUE, "left") > 200  # the loss line
    assert pixels_like(path, VALIDATION_ORANGE, "left") > 30  # the validation points
    assert pixels_like(path, ADAPTER_GREEN, "right") > 2_000  # the adapter's bars
    assert [p.name for p in path.parent.iterdir()] == ["evaluation.png"]  # no temporary file left


def test_the_bars_follow_the_scores(tmp_path: Path) -> None:
    low = save_evaluation_chart(metadata(adapter_accuracy=0.1), tmp_path / "low.png", "v1")
    high = save_evaluation_chart(metadata(adapter_accuracy=0.9), tmp_path / "high.png", "v1")
    assert pixels_like(high, ADAPTER_GREEN, "right") > pixels_like(low, ADAPTER_GREEN, "right") + 2_000


def test_missing_or_damaged_parts_leave_a_note_not_an_error(tmp_path: Path) -> None:
    bare = metadata(loss_curve=[["x", 1.0], [1], "junk"], validation_curve=None, evaluation={})
    path = save_evaluation_chart(bare, tmp_path / "bare.png", "v2")
    png_size(path)
    assert pixels_like(path, TRAIN_BLUE, "left") == 0
    assert pixels_like(path, ADAPTER_GREEN, "right") == 0
    # Overwriting an earlier chart (a second `lore customize eval`) works.
    again = save_evaluation_chart(metadata(), path, "v2")
    assert pixels_like(again, ADAPTER_GREEN, "right") > 2_000
