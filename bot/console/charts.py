"""Charts drawn on the server as inline SVG (no JavaScript, nothing fetched): the console's
pages embed the markup as is. Only numbers and escaped labels go in."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

WIDTH, HEIGHT, MARGIN = 600, 160, 24


def bar_chart(points: Sequence[tuple[str, int]], title: str) -> str:
    """Bars for `points` (label, value), scaled to the largest, with first and last labels."""
    top = max((value for _, value in points), default=0) or 1
    slot = (WIDTH - 2 * MARGIN) / max(1, len(points))
    bars = []
    for n, (label, value) in enumerate(points):
        height = (HEIGHT - 2 * MARGIN) * value / top
        x = MARGIN + n * slot
        y = HEIGHT - MARGIN - height
        bars.append(
            f'<rect x="{x + 1:.1f}" y="{y:.1f}" width="{max(1.0, slot - 2):.1f}" height="{height:.1f}">'
            f"<title>{escape(label)}: {value}</title></rect>"
        )
    labels = ""
    if points:
        labels = (
            f'<text x="{MARGIN}" y="{HEIGHT - 6}">{escape(points[0][0])}</text>'
            f'<text x="{WIDTH - MARGIN}" y="{HEIGHT - 6}" text-anchor="end">{escape(points[-1][0])}</text>'
            f'<text x="{MARGIN}" y="{MARGIN - 8}">max {top}</text>'
        )
    return (
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(title)}">'
        f"<title>{escape(title)}</title>{''.join(bars)}{labels}</svg>"
    )


def line_chart(series: Sequence[tuple[str, Sequence[tuple[float, float]]]], title: str) -> str:
    """One polyline per (name, points) series on shared axes (e.g. train and validation loss
    per step), with the axes' ranges written at the corners."""
    points = [point for _, line in series for point in line]
    if not points:
        return f'<p class="muted">{escape(title)}: no points recorded</p>'
    xs, ys = [x for x, _ in points], [y for _, y in points]
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)

    def place(x: float, y: float) -> str:
        left = MARGIN + (WIDTH - 2 * MARGIN) * ((x - x0) / (x1 - x0) if x1 > x0 else 0.5)
        top = HEIGHT - MARGIN - (HEIGHT - 2 * MARGIN) * ((y - y0) / (y1 - y0) if y1 > y0 else 0.5)
        return f"{left:.1f},{top:.1f}"

    lines = []
    for n, (name, line) in enumerate(series):
        if line:
            coordinates = " ".join(place(x, y) for x, y in line)
            lines.append(f'<polyline class="series{n}" points="{coordinates}"><title>{escape(name)}</title></polyline>')
    legend = " · ".join(escape(name) for name, line in series if line)
    return (
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(title)}">'
        f"<title>{escape(title)}</title>{''.join(lines)}"
        f'<text x="{MARGIN}" y="{MARGIN - 8}">{escape(title)}: {legend} (max {y1:.3g}, min {y0:.3g})</text>'
        f'<text x="{MARGIN}" y="{HEIGHT - 6}">step {x0:g}</text>'
        f'<text x="{WIDTH - MARGIN}" y="{HEIGHT - 6}" text-anchor="end">step {x1:g}</text></svg>'
    )


def paired_bars(groups: Sequence[tuple[str, float | None, float | None]], names: tuple[str, str], title: str) -> str:
    """Two bars per group (e.g. base model vs adapter per metric), values between 0 and 1."""
    slot = (WIDTH - 2 * MARGIN) / max(1, len(groups))
    bars = []
    for n, (label, first, second) in enumerate(groups):
        for side, value in enumerate((first, second)):
            height = (HEIGHT - 2 * MARGIN - 14) * max(0.0, min(1.0, value or 0.0))
            x = MARGIN + n * slot + slot * (0.15 + 0.35 * side)
            shown = "n/a" if value is None else f"{value:.2f}"
            bars.append(
                f'<rect class="series{side}" x="{x:.1f}" y="{HEIGHT - MARGIN - height:.1f}" width="{slot * 0.3:.1f}" '
                f'height="{height:.1f}"><title>{escape(names[side])} {escape(label)}: {shown}</title></rect>'
                f'<text x="{x + slot * 0.15:.1f}" y="{HEIGHT - MARGIN - height - 3:.1f}" text-anchor="middle">{shown}</text>'
            )
        bars.append(
            f'<text x="{MARGIN + (n + 0.5) * slot:.1f}" y="{HEIGHT - 6}" text-anchor="middle">{escape(label)}</text>'
        )
    return (
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(title)}">'
        f"<title>{escape(title)}</title>{''.join(bars)}"
        f'<text x="{MARGIN}" y="{MARGIN - 8}">{escape(title)}: {escape(names[0])} (grey) vs {escape(names[1])}</text></svg>'
    )
