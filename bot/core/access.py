"""Who may see what in each place a question is asked.

A reply only the asker can read (DM, personal chat, ephemeral `/lore` reply) may use every
document the asker may read. A reply others can read (channel, group chat, thread) may use
only what every reader there may read: `everyone` documents, plus the documents of the
group configured for that conversation (`permissions.channel_audiences`) when the asker
belongs to it too. Each question is checked on its own, so a follow-up in a thread by
another person never inherits the first asker's access.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import NamedTuple

from bot.types import Answer, Asker, Question
from knowledge.permissions import may_read
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
