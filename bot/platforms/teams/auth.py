"""Bot Framework authentication for the Teams endpoint, built from `TeamsSettings`.

With `MICROSOFT_APP_ID` set, every request must carry a Bot Framework JWT, validated by
botbuilder's own code against the Bot Framework's OpenID metadata. Without it the bot runs in
local/emulator mode: no token is checked and replies are sent unsigned.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass

from botbuilder.integration.aiohttp import ConfigurationBotFrameworkAuthentication
from botbuilder.schema import CallerIdConstants
from botframework.connector.auth import (
    AuthenticationConstants,
    BotFrameworkAuthentication,
)

from bot.settings import TeamsSettings
from knowledge.errors import ConfigurationError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BotFrameworkConfig:
    """The object botbuilder's `ConfigurationBotFrameworkAuthentication` reads by attribute
    name. The upper-case names are botbuilder's, not ours."""

    APP_ID: str
    APP_PASSWORD: str
    APP_TYPE: str
    APP_TENANTID: str
    # Set only to validate tokens against another OpenID metadata document (a sovereign or
    # private cloud, or a test issuer on loopback); botbuilder then takes every endpoint from
    # here instead of its public-cloud constants.
    TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL: str | None = None
    TO_BOT_FROM_CHANNEL_TOKEN_ISSUER: str | None = None
    TO_BOT_FROM_EMULATOR_OPENID_METADATA_URL: str | None = None
    TO_CHANNEL_FROM_BOT_LOGIN_URL: str | None = None
    TO_CHANNEL_FROM_BOT_OAUTH_SCOPE: str | None = None
    OAUTH_URL: str | None = None
    CALLER_ID: str | None = None


def bot_framework_config(settings: TeamsSettings, *, openid_metadata_url: str | None = None) -> BotFrameworkConfig:
    """Check the Teams settings and turn them into botbuilder's configuration.

    `openid_metadata_url` replaces the Bot Framework's OpenID metadata document (where the
    token signing keys are published); everything else keeps the public cloud's values."""
    app_type = settings.app_type
    password = settings.app_password.get_secret_value()
    if settings.app_id and app_type != "UserAssignedMSI" and not password:
        raise ConfigurationError(
            "MICROSOFT_APP_ID is set but MICROSOFT_APP_PASSWORD is empty: set the client "
            "secret of the bot's Azure app registration (or unset MICROSOFT_APP_ID for local mode)."
        )
    if settings.app_id and app_type in ("SingleTenant", "UserAssignedMSI") and not settings.app_tenant_id:
        raise ConfigurationError(
            f"MICROSOFT_APP_TYPE={app_type} needs MICROSOFT_APP_TENANT_ID (the Azure AD tenant "
            "the bot is registered in)."
        )
    if not settings.app_id and app_type != "MultiTenant":
        raise ConfigurationError(f"MICROSOFT_APP_TYPE={app_type} needs MICROSOFT_APP_ID.")
    config = BotFrameworkConfig(
        APP_ID=settings.app_id,
        APP_PASSWORD=password,
        APP_TYPE=app_type,
        APP_TENANTID=settings.app_tenant_id,
    )
    if openid_metadata_url is None:
        return config
    constants = AuthenticationConstants
    tenant = settings.app_tenant_id or constants.DEFAULT_CHANNEL_AUTH_TENANT
    return dataclasses.replace(
        config,
        TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL=openid_metadata_url,
        TO_BOT_FROM_CHANNEL_TOKEN_ISSUER=constants.TO_BOT_FROM_CHANNEL_TOKEN_ISSUER,
        TO_BOT_FROM_EMULATOR_OPENID_METADATA_URL=constants.TO_BOT_FROM_EMULATOR_OPENID_METADATA_URL,
        TO_CHANNEL_FROM_BOT_LOGIN_URL=constants.TO_CHANNEL_FROM_BOT_LOGIN_URL_PREFIX + tenant,
        TO_CHANNEL_FROM_BOT_OAUTH_SCOPE=constants.TO_CHANNEL_FROM_BOT_OAUTH_SCOPE,
        OAUTH_URL=constants.OAUTH_URL,
        CALLER_ID=CallerIdConstants.public_azure_channel,
    )


def bot_framework_authentication(
    settings: TeamsSettings, *, openid_metadata_url: str | None = None
) -> BotFrameworkAuthentication:
    """botbuilder's authentication for these settings; says loudly when nothing is checked."""
    config = bot_framework_config(settings, openid_metadata_url=openid_metadata_url)
    if not config.APP_ID:
        log.warning(
            "TEAMS LOCAL MODE: MICROSOFT_APP_ID is not set, so /api/messages accepts requests "
            "WITHOUT AUTHENTICATION (fine for the Bot Framework Emulator, never for a public "
            "endpoint). Set MICROSOFT_APP_ID and MICROSOFT_APP_PASSWORD to require Bot Framework "
            "tokens."
        )
    else:
        log.info(
            "Teams: Bot Framework tokens required for app id %s (%s)",
            config.APP_ID,
            config.APP_TYPE,
        )
    return ConfigurationBotFrameworkAuthentication(config, logger=log)
