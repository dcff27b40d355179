"""Which Azure AD tenants' users may ask the Teams bot (#14, route 3).

An activity names its sender's tenant in `channelData.tenant.id` and
`conversation.tenantId`. Only the allowed tenants (`teams.allowed_tenant_ids`; by default the
app's own, `MICROSOFT_APP_TENANT_ID`) count as colleagues; everyone else is refused before
anything is looked up or retrieved. A MultiTenant bot with neither set would answer any
organisation that installs it, so it does not start: there is no safe tenant to guess.
"""

from __future__ import annotations

from dataclasses import dataclass

from botbuilder.schema import Activity

from bot.settings import TeamsSettings
from knowledge.errors import ConfigurationError

REFUSAL = (
    "Sorry, I only answer people in this company's Microsoft 365 organisation, so I can't "
    "help here. Ask your contact at the company instead."
)


@dataclass(frozen=True)
class TenantAllowList:
    """The tenants whose users are answered; None admits every activity (local mode only,
    which listens on loopback and checks no tokens anyway)."""

    tenant_ids: frozenset[str] | None

    def admits(self, activity: Activity) -> bool:
        if self.tenant_ids is None:
            return True
        tenant = tenant_of(activity)
        return tenant is not None and tenant in self.tenant_ids


def tenant_of(activity: Activity) -> str | None:
    """The sender's tenant id; None when the activity names none, or two that differ."""
    channel_data = activity.channel_data if isinstance(activity.channel_data, dict) else {}
    tenant = channel_data.get("tenant")
    conversation = activity.conversation
    extra = getattr(conversation, "additional_properties", None) or {}
    named = {
        _id(tenant.get("id") if isinstance(tenant, dict) else None),
        # botbuilder maps `tenantID`; Teams sends `tenantId`, which lands in the extras.
        _id(getattr(conversation, "tenant_id", None)),
        _id(extra.get("tenantId")),
    } - {None}
    return next(iter(named)) if len(named) == 1 else None


def tenant_allow_list(settings: TeamsSettings) -> TenantAllowList:
    """The allowed tenants for these settings; raises ConfigurationError for a MultiTenant
    bot that names none."""
    configured = [tenant.strip().casefold() for tenant in settings.allowed_tenant_ids if tenant.strip()]
    if not configured and settings.app_tenant_id:
        configured = [settings.app_tenant_id.strip().casefold()]
    if configured:
        return TenantAllowList(frozenset(configured))
    if not settings.app_id:
        return TenantAllowList(None)
    raise ConfigurationError(
        "Teams: a MultiTenant bot with no tenant would answer users of any organisation that "
        "installs it. Set teams.allowed_tenant_ids in lore.toml (or "
        "LORE_TEAMS__ALLOWED_TENANT_IDS='[\"<tenant id>\"]') to your Azure AD tenant id(s), or "
        "set MICROSOFT_APP_TENANT_ID."
    )


def _id(value: object) -> str | None:
    return value.strip().casefold() if isinstance(value, str) and value.strip() else None
