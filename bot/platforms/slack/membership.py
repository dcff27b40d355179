"""Who may ask the Slack bot, and where it may answer: the gate every question, share and
rating passes before anything is retrieved.

Only colleagues count as `everyone`: accounts of the workspaces and Enterprise Grid
organisations allowed (`slack.allowed_team_ids` / `allowed_enterprise_ids`; by default the one
the bot token belongs to, from `auth.test`). Slack Connect users from other organisations
(`is_stranger`, or a foreign workspace) are refused; guests (`is_restricted`,
`is_ultra_restricted`) are refused unless `permissions.slack_guest_group` lets them in. A
person Lore cannot look up is refused too (fail closed). Answers others can read are not given
in externally shared (Slack Connect) channels unless `slack.answer_in_shared_channels` is on.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.identity.cache import TtlCache
from bot.platforms.slack.users import SlackEmails, SlackUser

log = logging.getLogger(__name__)

NOT_A_MEMBER = (
    "Sorry, I only answer members of this company's Slack workspace, so I can't help here. "
    "Ask your contact at the company instead."
)
GUEST = "Sorry, I don't answer guest accounts. If you need the company's documents, ask the person who invited you."
UNKNOWN = "Sorry, I couldn't check your Slack account just now. Please try again in a few minutes."
SHARED_CHANNEL = (
    "I don't answer in channels shared with other organisations: people outside the company "
    "would see it. Ask me in a direct message or with /lore instead."
)


@dataclass(frozen=True)
class Admission:
    """Whether a person may be answered: their e-mail and any groups granted to them when
    allowed, else the polite refusal to show them."""

    allowed: bool
    email: str | None = None
    groups: tuple[str, ...] = ()
    refusal: str = ""


def refused(reason: str) -> Admission:
    return Admission(False, refusal=reason)


@dataclass(frozen=True)
class Home:
    """The workspaces and organisations whose members may ask."""

    team_ids: frozenset[str]
    enterprise_ids: frozenset[str]


class SlackMembership:
    """Checks askers against the allowed workspaces and channels against Slack Connect."""

    def __init__(
        self,
        client: AsyncWebClient,
        people: SlackEmails,
        *,
        allowed_team_ids: list[str],
        allowed_enterprise_ids: list[str],
        guest_group: str | None,
        answer_in_shared_channels: bool,
        channel_cache: TtlCache[bool] | None = None,
    ) -> None:
        """Empty allow-lists mean the workspace (and organisation) of the bot token."""
        self._client = client
        self._people = people
        self._configured = Home(frozenset(allowed_team_ids), frozenset(allowed_enterprise_ids))
        self._home: Home | None = None
        self._guest_group = guest_group
        self._shared_allowed = answer_in_shared_channels
        self._channels: TtlCache[bool] = channel_cache or TtlCache(ttl_seconds=600.0)

    async def admit(self, user_id: str) -> Admission:
        """May `user_id` be answered at all (privately)?"""
        user = await self._people.user(user_id)
        if user is None:
            return refused(UNKNOWN)
        home = await self.home()
        if home is None:
            return refused(UNKNOWN)
        if not _belongs(user, home):
            log.info(
                "slack: refused user=%s of team=%s enterprise=%s stranger=%s (not an allowed workspace)",
                user_id,
                user.team_id,
                user.enterprise_id,
                user.stranger,
            )
            return refused(NOT_A_MEMBER)
        if user.guest:
            if self._guest_group is None:
                log.info("slack: refused guest user=%s (permissions.slack_guest_group is unset)", user_id)
                return refused(GUEST)
            return Admission(True, user.email, (self._guest_group,))
        return Admission(True, user.email)

    async def admit_in_channel(self, user_id: str, channel_id: str, ext_shared: bool | None = None) -> Admission:
        """May `user_id` be answered where everyone in `channel_id` reads it? `ext_shared`:
        what the event envelope said about the channel (`is_ext_shared_channel`), if anything."""
        if not channel_id.startswith("D") and not self._shared_allowed:
            shared = ext_shared if ext_shared is not None else await self.externally_shared(channel_id)
            if shared:
                log.info("slack: refused to answer in externally shared channel=%s", channel_id)
                return refused(SHARED_CHANNEL)
        return await self.admit(user_id)

    async def externally_shared(self, channel_id: str) -> bool:
        """Whether people of another organisation can read `channel_id` (conversations.info);
        True when Slack cannot tell us (fail closed)."""
        fresh, shared = self._channels.get(channel_id)
        if fresh:
            return bool(shared)
        try:
            response = await self._client.conversations_info(channel=channel_id)
        except (SlackApiError, TimeoutError, aiohttp.ClientError) as error:
            log.warning(
                "slack: conversations.info for %s failed (%s); treating it as shared with other "
                "organisations. Grant the channels:read, groups:read and mpim:read scopes.",
                channel_id,
                error,
            )
            return True
        channel = response.get("channel") or {}
        shared = bool(
            channel.get("is_ext_shared")
            or channel.get("is_pending_ext_shared")
            or (channel.get("is_shared") and not channel.get("is_org_shared"))
        )
        self._channels.put(channel_id, shared)
        return shared

    async def home(self) -> Home | None:
        """The allowed workspaces; by default the bot token's own (auth.test, asked once)."""
        if self._configured.team_ids or self._configured.enterprise_ids:
            return self._configured
        if self._home is None:
            try:
                response = await self._client.auth_test()
            except (SlackApiError, TimeoutError, aiohttp.ClientError) as error:
                log.warning("slack: auth.test failed (%s); cannot tell colleagues from others", error)
                return None
            team, enterprise = response.get("team_id"), response.get("enterprise_id")
            self._home = Home(frozenset({team} if team else ()), frozenset({enterprise} if enterprise else ()))
        return self._home


def _belongs(user: SlackUser, home: Home) -> bool:
    if user.stranger:
        return False
    return (user.team_id is not None and user.team_id in home.team_ids) or (
        user.enterprise_id is not None and user.enterprise_id in home.enterprise_ids
    )
