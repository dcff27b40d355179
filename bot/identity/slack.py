"""Slack user id → e-mail, through `users.info` (needs the `users:read.email` scope), cached."""

from __future__ import annotations

import logging

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.identity.cache import TtlCache

logger = logging.getLogger(__name__)

# Failures that will not fix themselves soon (no such user, missing scope) are remembered
# for this long, so a misconfigured app does not call users.info on every message.
_FAILURE_SECONDS = 300.0


class SlackEmails:
    """Looks up Slack users' e-mail addresses. An unknown address is None: the asker then
    holds only `everyone` (fail closed)."""

    def __init__(self, client: AsyncWebClient, cache: TtlCache[str | None] | None = None) -> None:
        self.client = client
        self.cache: TtlCache[str | None] = cache or TtlCache(ttl_seconds=3600.0)

    async def email_of(self, user_id: str) -> str | None:
        """The e-mail on the user's Slack profile, or None (unknown user, bot, no scope)."""
        fresh, email = self.cache.get(user_id)
        if fresh:
            return email
        try:
            response = await self.client.users_info(user=user_id)
        except SlackApiError as error:
            data = error.response.data
            reason = data.get("error", "unknown error") if isinstance(data, dict) else f"HTTP {error.response.status_code}"
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
        user = response.get("user") or {}
        email = (user.get("profile") or {}).get("email") or None
        if user.get("deleted") or user.get("is_bot"):
            email = None
        email = email.strip().casefold() if email else None
        self.cache.put(user_id, email)
        return email
