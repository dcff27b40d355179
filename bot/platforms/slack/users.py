"""Slack user id → who they are, through `users.info` (needs the `users:read.email` scope),
cached: the e-mail that decides what they may read, and the workspace, organisation and
account kind (guest, stranger) that decide whether they may ask at all."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.identity.cache import TtlCache

logger = logging.getLogger(__name__)

# Failures that will not fix themselves soon (no such user, missing scope) are remembered
# for this long, so a misconfigured app does not call users.info on every message.
_FAILURE_SECONDS = 300.0


@dataclass(frozen=True)
class SlackUser:
    """What `users.info` says about a person (the fields Lore's decisions rest on)."""

    user_id: str
    email: str | None  # None for bots, deactivated accounts and hidden addresses
    team_id: str | None  # the workspace the account belongs to
    enterprise_id: str | None  # the Enterprise Grid organisation, when there is one
    guest: bool  # a multi- or single-channel guest (`is_restricted`, `is_ultra_restricted`)
    stranger: bool  # `is_stranger`: from another organisation, seen through Slack Connect


def slack_user(user: dict[str, Any]) -> SlackUser:
    """The `user` object of a `users.info` response as a `SlackUser`."""
    email = (user.get("profile") or {}).get("email") or None
    if user.get("deleted") or user.get("is_bot"):
        email = None
    enterprise = user.get("enterprise_user") or {}
    return SlackUser(
        user_id=str(user.get("id") or ""),
        email=email.strip().casefold() if email else None,
        team_id=user.get("team_id") or None,
        enterprise_id=enterprise.get("enterprise_id") or user.get("enterprise_id") or None,
        guest=bool(user.get("is_restricted") or user.get("is_ultra_restricted")),
        stranger=bool(user.get("is_stranger")),
    )


class SlackEmails:
    """Looks up Slack users. An unknown user is None: they then hold only `everyone` (the
    e-mail), and the membership check refuses them (fail closed)."""

    def __init__(self, client: AsyncWebClient, cache: TtlCache[SlackUser | None] | None = None) -> None:
        self.client = client
        self.cache: TtlCache[SlackUser | None] = cache or TtlCache(ttl_seconds=3600.0)

    async def email_of(self, user_id: str) -> str | None:
        """The e-mail on the user's Slack profile, or None (unknown user, bot, no scope)."""
        user = await self.user(user_id)
        return user.email if user is not None else None

    async def user(self, user_id: str) -> SlackUser | None:
        """What `users.info` says about `user_id`, or None when it cannot be looked up."""
        fresh, user = self.cache.get(user_id)
        if fresh:
            return user
        try:
            response = await self.client.users_info(user=user_id)
        except SlackApiError as error:
            data = error.response.data
            reason = (
                data.get("error", "unknown error") if isinstance(data, dict) else f"HTTP {error.response.status_code}"
            )
            if reason == "ratelimited":
                return None  # try again on the next message
            if reason in ("missing_scope", "no_permission"):
                logger.warning("slack: users.info refused (%s); add the users:read.email scope", reason)
            else:
                logger.info("slack: users.info for %s failed: %s", user_id, reason)
            self.cache.put(user_id, None, min(_FAILURE_SECONDS, self.cache.ttl_seconds))
            return None
        except (TimeoutError, aiohttp.ClientError) as error:
            logger.warning("slack: users.info for %s unreachable: %s", user_id, error)
            return None
        found = slack_user({"id": user_id, **(response.get("user") or {})})
        self.cache.put(user_id, found)
        return found
