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
