"""Settings of the knowledge layer. The bot's settings object embeds these; the knowledge
package never reads the environment itself."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from knowledge.limits import MiB, ParseLimits

# Who may read a source's documents: the ACL file (then each file's mode where it says
# nothing), each file's Unix mode, or everyone.
PermissionSource = Literal["acl", "file-modes", "public"]


class SourceSettings(BaseModel):
    """One shared-drive folder to index (a mounted SMB/NFS share is just a folder)."""

    name: str
    path: Path
    include: list[str] = Field(default_factory=lambda: ["**/*"])
    exclude: list[str] = Field(default_factory=list)
    # Link prefix a person can click, e.g. https://drive.example.com/handbook/ ; else file://
    url_prefix: str | None = None
    # Larger files are not read: reported as failed with their size, from the listing's stat.
    max_file_bytes: int = Field(50 * MiB, gt=0)
    # Who may read its documents (see PermissionSource). Unset: "acl" when an ACL file is
    # configured, else Lore refuses to start until this is chosen; on an SMB/CIFS mount mode
    # bits come from mount options and may publish every file.
    permissions: PermissionSource | None = None


class IndexSettings(BaseModel):
    chunk_tokens: int = 256  # embedding-model tokens per chunk (MiniLM reads at most 256)
    chunk_overlap_tokens: int = 0
    embedding_model: Path | None = None  # a local sentence-transformers folder; None = bundled MiniLM
    embedding_batch_size: int = 32
    collection: str = "lore"
    chroma_host: str | None = None  # set to use a Chroma server instead of the embedded store
    chroma_port: int = 8000
    # Per-file parsing limits (knowledge/limits.py): a file over one is reported, not indexed.
    parse_timeout_seconds: float = Field(ParseLimits.timeout_seconds, gt=0)
    parse_memory_mb: int = Field(ParseLimits.memory_bytes // MiB, gt=0)
    max_text_chars: int = Field(ParseLimits.max_text_chars, gt=0)
    max_inflated_mb: int = Field(ParseLimits.max_inflated_bytes // MiB, gt=0)
    max_compression_ratio: float = Field(ParseLimits.max_compression_ratio, gt=1)

    def parse_limits(self) -> ParseLimits:
        return ParseLimits(
            timeout_seconds=self.parse_timeout_seconds,
            memory_bytes=self.parse_memory_mb * MiB,
            max_text_chars=self.max_text_chars,
            max_inflated_bytes=self.max_inflated_mb * MiB,
            max_compression_ratio=self.max_compression_ratio,
        )


class RefreshSettings(BaseModel):
    interval_minutes: float | None = 60.0
    cron: str | None = None  # crontab expression; wins over interval_minutes when set


class RetrievalSettings(BaseModel):
    # Ten passages, at most two per document: five documents or more. Chosen on the
    # Sourcegraph question set's tuning half (benchmarks/answer_quality.py --sweep): the
    # expected facts were in the passages for 0.79 of questions with five, 0.90 with ten.
    k: int = 10
    max_per_document: int = 2
    candidates: int = 40  # per index, before fusion
    rrf_k: int = 60
