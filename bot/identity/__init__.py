"""Who is asking: chat accounts → e-mail (the platforms look accounts up: bot/platforms/*/users.py) → the principals (user and groups) they hold."""

from bot.identity.asker_principals import PrincipalsResolver
from bot.identity.directory import Directory, DirectoryFile, parse_directory

__all__ = ["Directory", "DirectoryFile", "PrincipalsResolver", "parse_directory"]
