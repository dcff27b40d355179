"""Who is asking: chat accounts → e-mail → the principals (user and groups) they hold."""

from bot.identity.directory import Directory, DirectoryFile, parse_directory
from bot.identity.principals import PrincipalsResolver

__all__ = ["Directory", "DirectoryFile", "PrincipalsResolver", "parse_directory"]
