"""Notices to the admins in a Slack channel (the retraining result): chat.postMessage with the
bot's own token. The token never appears in a log line or an error."""

from __future__ import annotations

import logging

from pydantic import SecretStr

from bot.customize.notify import NOTICE_TIMEOUT_SECONDS, AdminNotifier, NoticeError
from bot.platforms.slack.mrkdwn import escape
from bot.settings import LoreSettings

log = logging.getLogger(__name__)


class SlackChannelNotifier:
    """Posts to one Slack channel as the bot (the bot must be a member of a private channel)."""

    def __init__(self, token: SecretStr, channel: str, api_url: str) -> None:
        self._token = token
        self._channel = channel
        self._api_url = api_url

    @property
    def target(self) -> str:
        return f"Slack channel {self._channel}"

    def send(self, text: str) -> None:
        # Imported here: the retraining job should not pay for slack_sdk unless it notifies.
        from slack_sdk import WebClient
        from slack_sdk.errors import SlackApiError, SlackClientError

        client = WebClient(
            token=self._token.get_secret_value(), base_url=self._api_url, timeout=int(NOTICE_TIMEOUT_SECONDS)
        )
        try:
            client.chat_postMessage(channel=self._channel, text=escape(text), unfurl_links=False)
        except SlackApiError as error:
            raise NoticeError(
                f"Slack answered {error.response.get('error')!r}: check that the bot is in "
                f"{self._channel} and has the chat:write scope"
            ) from None
        except (SlackClientError, OSError) as error:
            raise NoticeError(f"Slack could not be reached ({type(error).__name__})") from None


def slack_admin_notifier(settings: LoreSettings) -> AdminNotifier | None:
    """The notifier for `customize.admin_slack_channel` (None when unset, or without a bot token
    to post with: said in the log)."""
    channel = settings.customize.admin_slack_channel
    if not channel:
        return None
    if settings.slack.bot_token is None:
        log.warning("customize.admin_slack_channel is set but SLACK_BOT_TOKEN is not: results are not posted to Slack")
        return None
    return SlackChannelNotifier(settings.slack.bot_token, channel, settings.slack.api_url)
