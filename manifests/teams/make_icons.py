"""Draws the Teams app icons (run from anywhere: `python manifests/teams/make_icons.py`).

- color.png: 192×192, the open-book glyph in white on the accent colour (full bleed; Teams
  rounds the corners itself).
- outline.png: 32×32, the same glyph in pure white on a fully transparent background, as
  Teams requires for the outline icon (no other colours, no semi-transparent pixels).
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

HERE = Path(__file__).resolve().parent
ACCENT = (0x2F, 0x5D, 0x8A, 255)
WHITE = (255, 255, 255, 255)
CLEAR = (255, 255, 255, 0)

# An open book in a unit square: two pages either side of the spine.
LEFT_PAGE = [(0.08, 0.22), (0.46, 0.30), (0.46, 0.84), (0.08, 0.76)]
RIGHT_PAGE = [(0.54, 0.30), (0.92, 0.22), (0.92, 0.76), (0.54, 0.84)]


def draw_glyph(size: int, margin: float, background: tuple[int, int, int, int]) -> Image.Image:
    """The book glyph in white, inset by `margin` (a fraction of the side) on `background`."""
    image = Image.new("RGBA", (size, size), background)
    draw = ImageDraw.Draw(image)
    span = size * (1 - 2 * margin)
    offset = size * margin
    for page in (LEFT_PAGE, RIGHT_PAGE):
        draw.polygon([(offset + x * span, offset + y * span) for x, y in page], fill=WHITE)
    return image


def main(out_dir: Path = HERE) -> None:
    """Write color.png and outline.png into `out_dir`."""
    # Drawn 4× larger and scaled down so the colour icon's edges are smooth.
    color = draw_glyph(192 * 4, 0.2, ACCENT).resize((192, 192), Image.Resampling.LANCZOS)
    color.save(out_dir / "color.png", optimize=True)
    # No resampling: every outline pixel must be exactly white or exactly transparent.
    draw_glyph(32, 0.03, CLEAR).save(out_dir / "outline.png", optimize=True)


if __name__ == "__main__":
    main()
