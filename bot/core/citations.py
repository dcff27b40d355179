"""Citation markers: the answer refers to passages as [n] (or [n, m]); markers naming a
passage that was not given are removed."""

from __future__ import annotations

import re
from collections.abc import Collection

_MARKER = re.compile(r"\[\s*(\d+(?:\s*,\s*\d+)*)\s*\]")


def cited_numbers(text: str) -> list[int]:
    """Passage numbers cited in `text`, in order of first mention, without repeats."""
    numbers: list[int] = []
    for match in _MARKER.finditer(text):
        for part in match.group(1).split(","):
            number = int(part)
            if number not in numbers:
                numbers.append(number)
    return numbers


def drop_invalid_citations(text: str, valid: Collection[int]) -> str:
    """`text` with every cited number outside `valid` removed (and empty markers dropped)."""

    def keep(match: re.Match[str]) -> str:
        kept = [part.strip() for part in match.group(1).split(",") if int(part) in valid]
        return f"[{', '.join(kept)}]" if kept else ""

    cleaned = _MARKER.sub(keep, text)
    return re.sub(r"[ \t]+([.,;:!?])", r"\1", re.sub(r"[ \t]{2,}", " ", cleaned)).strip()
