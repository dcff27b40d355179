"""Bounds on what one file may cost a refresh, so a hostile or broken file is reported and
skipped instead of exhausting the process that serves answers (`lore serve` refreshes in
place). The settings that set them live in `IndexSettings`; the defaults are here."""

from __future__ import annotations

from dataclasses import dataclass

MiB = 1024 * 1024


@dataclass(frozen=True)
class ParseLimits:
    """What parsing one file may cost. Files larger than their source's `max_file_bytes`
    are not read at all; these bound the parse of the rest."""

    # Wall-clock seconds for one file, in the parser process (which is killed and replaced).
    timeout_seconds: float = 60.0
    # Memory one parse may allocate on top of the parser process's own (POSIX only).
    memory_bytes: int = 2048 * MiB
    # Characters of text one file may produce: pretty-printed JSON and repeated table
    # headers can be hundreds of times their file; ten million is a 5,000-page book.
    max_text_chars: int = 10_000_000
    # Office files are zip archives: the members' declared sizes, all together, and the
    # ratio of a member's size to its compressed size (zip bombs reach 1000:1; Office XML
    # stays well under 100:1). The ratio is checked for members over one MiB only.
    max_inflated_bytes: int = 512 * MiB
    max_compression_ratio: float = 200.0
