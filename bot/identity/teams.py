"""Teams user → e-mail. An activity names its sender by Teams id and AAD object id only;
the roster (`TeamsInfo.get_member`) gives the e-mail and UPN, cached per AAD object id."""

from __future__ import annotations

import logging

from botbuilder.core import TurnContext
from botbuilder.core.teams import TeamsInfo

from bot.identity.cache import TtlCache

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
    """Looks up the e-mail of the sender of a Teams activity through the conversation roster.
    An unknown address is None: the asker then holds only `everyone` (fail closed)."""

    def __init__(self, cache: TtlCache[str | None] | None = None) -> None:
        self.cache: TtlCache[str | None] = cache or TtlCache(ttl_seconds=3600.0)

    async def email_of(self, turn_context: TurnContext) -> str | None:
        sender = turn_context.activity.from_property
        key = sender.aad_object_id or sender.id
        fresh, email = self.cache.get(key)
        if fresh:
            return email
        try:
            member = await TeamsInfo.get_member(turn_context, sender.id)
        except Exception as error:  # noqa: BLE001 - msrest raises many types; any means "unknown"
            logger.warning("teams: roster look-up for %s failed: %s", key, error)
            return None
        email = teams_email(member)
        self.cache.put(key, email)
        return email
