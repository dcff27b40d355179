"""Settings of the knowledge layer. The bot's settings object embeds these; the knowledge
package never reads the environment itself."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Discriminator, Field, SecretStr, Tag

from knowledge.limits import MiB, ParseLimits

# Who may read a source's documents: the ACL file (then each file's own permissions where it
# says nothing), each file's Unix mode (folders), the cloud drive's own sharing ("source":
# SharePoint/OneDrive and Google Drive), or everyone.
PermissionSource = Literal["acl", "file-modes", "source", "public"]


class FolderSourceSettings(BaseModel):
    """One shared-drive folder to index (a mounted SMB/NFS share is just a folder)."""

    kind: Literal["folder"] = "folder"
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

    def link_prefixes(self) -> list[str]:
        """Where links to its documents point (links in answers may go only to such places)."""
        return [self.url_prefix] if self.url_prefix else []


class SharePointSourceSettings(BaseModel):
    """SharePoint document libraries and OneDrive accounts, read through Microsoft Graph with
    an app registration's own credentials (client credentials: a secret or a certificate)."""

    kind: Literal["sharepoint"]
    name: str
    tenant_id: str
    client_id: str
    # Or LORE_SOURCES__<n>__CLIENT_SECRET (n: the source's position in [[sources]], from 0).
    client_secret: SecretStr | None = None
    certificate_path: Path | None = None  # PEM with the private key and the certificate
    drives: list[str] = Field(default_factory=list)  # drive ids (b!...)
    sites: list[str] = Field(default_factory=list)  # site URLs: every document library of each
    graph_url: str = "https://graph.microsoft.com/v1.0"
    authority_url: str = "https://login.microsoftonline.com"
    include: list[str] = Field(default_factory=lambda: ["**/*"])
    exclude: list[str] = Field(default_factory=list)
    max_file_bytes: int = Field(50 * MiB, gt=0)
    # "source": the drive's own sharing decides; "acl": the ACL file first, the drive's
    # sharing where it says nothing; "public": everyone.
    permissions: PermissionSource = "source"
    # Links that anyone in the organisation can open count as shared with `everyone` only
    # when the admin says so; anonymous links never grant anything.
    organisation_links_grant_everyone: bool = False
    request_timeout_seconds: float = Field(60.0, gt=0)
    # (#16, SharePoint) Each drive is enumerated afresh this often, every item's sharing read
    # again: delta reports sharing-only changes reliably only to apps granted
    # Sites.FullControl.All, so this bounds how long a missed one can last. 0: never.
    full_resync_hours: float = Field(24.0, ge=0)
    # Hosts documents open on, for links inside answers (the sites' hosts are added), e.g.
    # ["https://contoso.sharepoint.com/", "https://contoso-my.sharepoint.com/"].
    link_hosts: list[str] = Field(default_factory=list)

    def link_prefixes(self) -> list[str]:
        return [*self.sites, *self.link_hosts]


class GoogleDriveSourceSettings(BaseModel):
    """Google shared drives and folders, read with a service account (optionally acting for
    a user of the domain through domain-wide delegation)."""

    kind: Literal["gdrive"]
    name: str
    credentials_file: Path  # a service-account key (JSON); its token_uri is honoured
    drives: list[str] = Field(default_factory=list)  # shared drive ids
    folders: list[str] = Field(default_factory=list)  # folder ids (with everything below them)
    delegated_user: str | None = None
    api_endpoint: str = "https://www.googleapis.com"
    include: list[str] = Field(default_factory=lambda: ["**/*"])
    exclude: list[str] = Field(default_factory=list)
    max_file_bytes: int = Field(50 * MiB, gt=0)
    permissions: PermissionSource = "source"  # as for SharePoint
    # Shares with a whole domain count as `everyone` only for these domains (the company's
    # own), and only when the share is discoverable; "anyone with the link" grants nothing.
    everyone_domains: list[str] = Field(default_factory=list)
    request_timeout_seconds: float = Field(60.0, gt=0)
    # A shared drive's membership changes show in no file's change: its members are asked
    # again at a poll that finds changes, and at least this often (one request per drive).
    members_check_minutes: float = Field(15.0, gt=0)

    def link_prefixes(self) -> list[str]:
        return ["https://drive.google.com/", "https://docs.google.com/"]


def _source_kind(value: Any) -> str:
    """A [[sources]] table without `kind` is a folder (every lore.toml written before cloud
    drives existed)."""
    if isinstance(value, dict):
        return str(value.get("kind", "folder"))
    return str(getattr(value, "kind", "folder"))


# One [[sources]] table: its `kind` says which settings apply.
SourceSettings = Annotated[
    Annotated[FolderSourceSettings, Tag("folder")]
    | Annotated[SharePointSourceSettings, Tag("sharepoint")]
    | Annotated[GoogleDriveSourceSettings, Tag("gdrive")],
    Discriminator(_source_kind),
]
CloudSourceSettings = SharePointSourceSettings | GoogleDriveSourceSettings


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
