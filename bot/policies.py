"""The service builder's policy factories: the access policy (who may see what where), the
document permission policy and the directory, built from settings. The policies themselves
compute (bot/core/access.py, knowledge/permissions/policy.py); only this module reads
`LoreSettings` for them."""

from __future__ import annotations

from collections.abc import Sequence

from bot.core.access import AccessPolicy
from bot.identity.asker_principals import PrincipalsResolver
from bot.identity.directory import Directory, DirectoryFile
from bot.settings import LoreSettings
from knowledge.config import SourceSettings
from knowledge.permissions import FileModePermissions, PermissionPolicy
from knowledge.permissions.acl import check_outside_sources
from knowledge.permissions.policy import permission_sources


def build_directory(settings: LoreSettings) -> Directory | None:
    """The configured directory file, or None when there is none."""
    return DirectoryFile(settings.directory_file) if settings.directory_file else None


def build_access_policy(settings: LoreSettings, directory: Directory | None = None) -> AccessPolicy:
    """The AccessPolicy for these settings (directory file, channel audiences); `directory`
    is the one already built, if any."""
    directory = directory if directory is not None else build_directory(settings)
    return AccessPolicy(PrincipalsResolver(directory), settings.permissions.channel_audiences)


def build_permission_policy(settings: LoreSettings, extra_sources: Sequence[SourceSettings] = ()) -> PermissionPolicy:
    """The document PermissionPolicy for these settings (pass to KnowledgeBase(permissions=...)),
    also covering `extra_sources` (folders given to `lore index --source`). Refuses, with a
    message naming the setting, a source whose permission source is not chosen and a side
    file (directory, glossary, curated training files) inside an indexed folder."""
    sources = [*settings.sources, *extra_sources]
    check_side_files(settings, sources)
    modes = settings.permissions
    return PermissionPolicy(
        settings.acl_file,
        [(source.name, source.path if source.kind == "folder" else None) for source in sources],
        FileModePermissions(modes.unix_groups, modes.unix_users, modes.unix_user_domain),
        choices=permission_sources(sources, settings.acl_file is not None),
    )


def check_side_files(settings: LoreSettings, sources: Sequence[SourceSettings]) -> None:
    """Refuse the directory file, the glossary and curated training files inside an indexed
    folder, like the ACL file: indexed, they would be readable, and whoever writes documents
    there could give themselves groups, or put words in the bot's mouth."""
    roots = [source.path for source in sources if source.kind == "folder"]
    side_files = [
        (settings.directory_file, "Directory file", "directory_file / LORE_DIRECTORY_FILE"),
        (settings.agent.glossary_file, "Glossary file", "agent.glossary_file / LORE_AGENT__GLOSSARY_FILE"),
        *((path, "Curated training file", "customize.curated_files") for path in settings.customize.curated_files),
    ]
    for path, what, setting in side_files:
        if path is not None:
            check_outside_sources(path, roots, what, setting)
