"""Who may see what in each place a question is asked.

A reply only the asker can read (DM, personal chat, ephemeral `/lore` reply) may use every
document the asker may read. A reply others can read (channel, group chat, thread) may use
only what every reader there may read: `everyone` documents, plus the documents of the
group configured for that conversation (`permissions.channel_audiences`) when the asker
belongs to it too. Each question is checked on its own, so a follow-up in a thread by
another person never inherits the first asker's access.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import NamedTuple

from bot.identity.asker_principals import PrincipalsResolver
from bot.identity.directory import Directory, DirectoryFile
from bot.settings import LoreSettings
from bot.types import Answer, Asker, Question
from knowledge.config import SourceSettings
from knowledge.permissions import FileModePermissions, PermissionPolicy, may_read
from knowledge.permissions.acl import check_outside_sources
from knowledge.permissions.policy import permission_sources
from knowledge.permissions.principals import group
from knowledge.types import EVERYONE, SearchFilters


class ShareCheck(NamedTuple):
    allowed: bool
    reason: str  # why not (empty when allowed)


class AccessPolicy:
    """Search filters per question, and the check behind "share in channel"."""

    def __init__(
        self,
        principals: Callable[[Asker], frozenset[str]],
        channel_audiences: Mapping[str, str] | None = None,
    ) -> None:
        self.principals = principals
        self.channel_audiences = {key: group(name) for key, name in (channel_audiences or {}).items()}

    def audience_of(self, conversation_id: str) -> frozenset[str]:
        """What every member of a conversation holds: `everyone`, plus its configured group."""
        configured = self.channel_audiences.get(conversation_id)
        return frozenset({EVERYONE} | ({configured} if configured else set()))

    def readers_principals(self, question: Question) -> frozenset[str]:
        """The principals a reply to `question` may draw on (see the module docstring)."""
        asker = self.principals(question.asker)
        if question.place == "private":
            return asker
        # The asker must hold the channel's group too: asking in a channel must never give
        # someone access they do not have themselves.
        return frozenset({EVERYONE} | (self.audience_of(question.conversation_id) & asker))

    def filters_for(self, question: Question) -> SearchFilters:
        """Retrieval filters for `question` (pass as the Agent's `filters_for`)."""
        return SearchFilters(principals=self.readers_principals(question))

    def may_share(self, answer: Answer, audience: frozenset[str]) -> ShareCheck:
        """Whether `answer` may be posted where readers hold `audience` (see `audience_of`):
        only if every passage it was built from is readable there."""
        return self.may_share_documents(((p.path, p.principals) for p in answer.passages), audience)

    def may_share_documents(
        self, documents: Iterable[tuple[str, Iterable[str]]], audience: frozenset[str]
    ) -> ShareCheck:
        """The same check from (path, principals) pairs, e.g. as kept in the answer log."""
        hidden = sorted({path for path, principals in documents if not may_read(principals, audience)})
        if not hidden:
            return ShareCheck(True, "")
        return ShareCheck(
            False,
            "This answer used documents that not everyone here may read "
            f"({', '.join(hidden)}), so it cannot be shared. Ask the question here instead to get "
            "an answer from documents everyone here may read.",
        )


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
