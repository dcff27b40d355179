"""Which class reads each kind of source (`kind` in a [[sources]] table): one row per kind, so
a new kind of drive is one module and one row here."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from knowledge.config import SourceSettings
from knowledge.sources.base import Source
from knowledge.sources.filesystem import FilesystemSource
from knowledge.sources.gdrive import GoogleDriveSource
from knowledge.sources.sharepoint import SharePointSource

# kind → (settings, state folder) → Source. The state folder (`<home>/index/sources/`) is
# where an incremental source keeps its copy of the listing and its change cursors.
SourceFactory = Callable[[Any, Path], Source]


def _folder(settings: Any, state_dir: Path) -> Source:
    return FilesystemSource(settings)


SOURCE_KINDS: dict[str, SourceFactory] = {
    "folder": _folder,
    "gdrive": GoogleDriveSource,
    "sharepoint": SharePointSource,  # SharePoint libraries and OneDrive through Graph (sources/sharepoint/)
}


def open_source(settings: SourceSettings, state_dir: Path) -> Source:
    """The Source reading these settings; close it when done."""
    return SOURCE_KINDS[settings.kind](settings, state_dir)
