"""Teams user → e-mail. An activity names its sender by Teams id and Azure AD object id only.

Where the directory pins object ids (`aad_object_ids`), identity rests on the object id: a
pinned object id is its person whatever the roster says, and a roster e-mail that the
directory pins to other object ids is not trusted (someone renamed an account, or set another
person's address on it). Elsewhere the roster (`TeamsInfo.get_member`) gives the e-mail or
UPN, cached per object id."""

from __future__ import annotations

import logging

from botbuilder.core import TurnContext
from botbuilder.core.teams import TeamsInfo

from bot.identity.cache import TtlCache
from bot.identity.directory import Directory

logger = logging.getLogger(__name__)


def teams_email(account: object) -> str | None:
    """The e-mail of a Teams roster entry (`TeamsChannelAccount`): its `email`, else its
    user principal name when that is an address (in most tenants the UPN is the sign-in
    e-mail). None when neither is."""
    for value in (getattr(account, "email", None), getattr(account, "user_principal_name", None)):
        if isinstance(value, str) and "@" in value.strip().strip("@"):
            return value.strip().casefold()
    return None


class TeamsEmails:
    """Looks up the e-mail of the sender of a Teams activity. An unknown address is None: the
    asker then holds only `everyone` (fail closed)."""

    def __init__(self, cache: TtlCache[str | None] | None = None, directory: Directory | None = None) -> None:
        self.cache: TtlCache[str | None] = cache or TtlCache(ttl_seconds=3600.0)
        self.directory = directory

    async def email_of(self, turn_context: TurnContext) -> str | None:
        sender = turn_context.activity.from_property
        object_id = (sender.aad_object_id or "").strip().casefold()
        if self.directory is not None and object_id:
            pinned = self.directory.email_of_aad_object(object_id)
            if pinned is not None:
                return pinned
        email = await self._roster_email(turn_context)
        if email is not None and self.directory is not None:
            owners = self.directory.aad_objects_of(email)
            if owners and object_id not in owners:
                logger.warning(
                    "teams: the roster gives %s to object id %s, but the directory pins that "
                    "address to another object id; answering them as unknown",
                    email,
                    object_id or "(none)",
                )
                return None
        return email

    async def _roster_email(self, turn_context: TurnContext) -> str | None:
        sender = turn_context.activity.from_property
        key = sender.aad_object_id or sender.id
        fresh, email = self.cache.get(key)
        if fresh:
            return email
        try:
            member = await TeamsInfo.get_member(turn_context, sender.id)
        except Exception as error:  # msrest raises many types; any means "unknown"
            logger.warning("teams: roster look-up for %s failed: %s", key, error)
            return None
        email = teams_email(member)
        self.cache.put(key, email)
        return email
