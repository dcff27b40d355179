"""Google Drive (shared drives and folders) as a document source."""

from knowledge.sources.gdrive.source import GoogleDriveSource

__all__ = ["GoogleDriveSource"]
