"""Where background jobs (retraining) tell the admins what they did, one notifier per platform
that `settings.customize` names a place on. A new platform is one more row."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType

from bot.customize.notify import AdminNotifier
from bot.platforms.slack.notices import slack_admin_notifier
from bot.platforms.teams.notices import teams_admin_notifier
from bot.settings import LoreSettings

# Each platform's notifier for the configured place, or None when none is configured.
ADMIN_NOTIFIERS: Mapping[str, Callable[[LoreSettings], AdminNotifier | None]] = MappingProxyType(
    {
        "slack": slack_admin_notifier,
        "teams": teams_admin_notifier,
    }
)


def admin_notifiers(settings: LoreSettings) -> list[AdminNotifier]:
    """The notifiers of every place `settings.customize` names (admin Slack channel, Teams webhook)."""
    built = (notifier(settings) for notifier in ADMIN_NOTIFIERS.values())
    return [notifier for notifier in built if notifier is not None]
