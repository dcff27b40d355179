"""Refuses Office files (zip archives) whose members would inflate beyond the limits.

Word, PowerPoint and Excel libraries inflate every member they read into memory, so a few
hundred kilobytes of zeros can become gigabytes. The central directory declares each
member's size, and the declarations are checked first (total and ratio). They can lie:
zipfile cuts a member's output at its declared size, but inflates the whole member in one
go to get there. So every deflated member is then inflated here once, a piece at a time,
and refused if it holds more than it declares."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib

from knowledge.errors import LimitExceededError
from knowledge.limits import MiB, ParseLimits

# Small members (styles, relationships) compress very well and cost nothing.
_RATIO_CHECKED_FROM = MiB
# Verifying reads this much compressed data at a time and inflates at most a MiB of it at once.
_COMPRESSED_PIECE = 64 * 1024
_INFLATED_PIECE = MiB
_LOCAL_HEADER = struct.Struct("<4s22xHH")  # signature ... file name length, extra field length
_LOCAL_HEADER_SIGNATURE = b"PK\x03\x04"


def check_archive(data: bytes, limits: ParseLimits) -> None:
    """Raise LimitExceededError when the archive's members exceed the limits, as declared
    or as they really inflate.

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
    for member in members:
        if member.compress_type == zipfile.ZIP_DEFLATED:
            _check_declared_size(data, member)


def _check_declared_size(data: bytes, member: zipfile.ZipInfo) -> None:
    """Inflate `member` piece by piece; refuse it as soon as it passes its declared size."""
    signature, name_length, extra_length = _LOCAL_HEADER.unpack_from(data, member.header_offset)
    if signature != _LOCAL_HEADER_SIGNATURE:
        raise zipfile.BadZipFile(f"bad local header for {member.filename}")
    start = member.header_offset + _LOCAL_HEADER.size + name_length + extra_length
    compressed = memoryview(data)[start : start + member.compress_size]
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    inflated = 0
    for offset in range(0, len(compressed), _COMPRESSED_PIECE):
        pending: bytes | memoryview = compressed[offset : offset + _COMPRESSED_PIECE]
        while pending and not inflater.eof:
            inflated += len(inflater.decompress(pending, _INFLATED_PIECE))
            if inflated > member.file_size:
                raise LimitExceededError(
                    f"archive member {member.filename} declares {member.file_size:,} bytes but inflates to "
                    "more: a forged zip (zip bomb); it is not opened"
                )
            pending = inflater.unconsumed_tail
        if inflater.eof:
            return
