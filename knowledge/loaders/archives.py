"""Refuses Office files (zip archives) whose members would inflate beyond the limits.

Word, PowerPoint and Excel libraries inflate every member they read into memory, so a few
hundred kilobytes of zeros can become gigabytes. The central directory declares each
member's size; zipfile never returns more than that (it stops at the declared size and
fails on the CRC when the data says otherwise), so checking the declarations up front
bounds what the parse can inflate."""

from __future__ import annotations

import io
import zipfile

from knowledge.errors import LimitExceededError
from knowledge.limits import MiB, ParseLimits

# Small members (styles, relationships) compress very well and cost nothing.
_RATIO_CHECKED_FROM = MiB


def check_archive(data: bytes, limits: ParseLimits) -> None:
    """Raise LimitExceededError when the archive's members, as declared, exceed the limits.

    A damaged archive raises zipfile.BadZipFile, which the caller reports as such."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        members = archive.infolist()
    total = sum(member.file_size for member in members)
    if total > limits.max_inflated_bytes:
        raise LimitExceededError(
            f"its {len(members)} archive members inflate to {total // MiB} MiB, over the "
            f"{limits.max_inflated_bytes // MiB} MiB limit (index.max_inflated_mb); raise it if the file is genuine"
        )
    for member in members:
        if member.file_size < _RATIO_CHECKED_FROM:
            continue
        ratio = member.file_size / max(member.compress_size, 1)
        if ratio > limits.max_compression_ratio:
            raise LimitExceededError(
                f"archive member {member.filename} inflates {ratio:.0f}:1 ({member.compress_size} bytes to "
                f"{member.file_size // MiB} MiB), over the {limits.max_compression_ratio:.0f}:1 limit "
                "(index.max_compression_ratio): a zip bomb, or raise the limit if the file is genuine"
            )
