"""SharePoint document libraries and OneDrive accounts through Microsoft Graph."""

from knowledge.sources.sharepoint.source import SharePointSource

__all__ = ["SharePointSource"]
