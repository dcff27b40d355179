"""Telling the admins what a background job did: a message in a Slack channel (chat.postMessage
with the bot's own token) and/or a Teams channel's incoming webhook (a POST of `{"text": ...}`).

Delivery is best effort: a failure is logged, never raised, because the job's own result (an
adapter promoted or not) stands either way. Neither the bot token nor the webhook URL, which
is itself a credential, ever appears in a log line or an error.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Protocol

from pydantic import SecretStr

from bot.errors import LoreError
from bot.platforms.slack.mrkdwn import escape
from bot.settings import LoreSettings

log = logging.getLogger(__name__)

TIMEOUT_SECONDS = 15.0


class NoticeError(LoreError):
    """A notice was not delivered; the message is safe to log."""


class AdminNotifier(Protocol):
    """One place admins read."""

    @property
    def target(self) -> str:
        """Where notices go, for logs (never a secret)."""

    def send(self, text: str) -> None:
        """Deliver `text` (plain text, several lines); NoticeError when it was not delivered."""


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
        from slack_sdk import WebClient
        from slack_sdk.errors import SlackApiError, SlackClientError

        client = WebClient(token=self._token.get_secret_value(), base_url=self._api_url, timeout=int(TIMEOUT_SECONDS))
        try:
            client.chat_postMessage(channel=self._channel, text=escape(text), unfurl_links=False)
        except SlackApiError as error:
            raise NoticeError(
                f"Slack answered {error.response.get('error')!r}: check that the bot is in "
                f"{self._channel} and has the chat:write scope"
            ) from None
        except (SlackClientError, OSError) as error:
            raise NoticeError(f"Slack could not be reached ({type(error).__name__})") from None


class TeamsWebhookNotifier:
    """Posts to a Teams channel's incoming webhook."""

    def __init__(self, url: SecretStr) -> None:
        self._url = url

    @property
    def target(self) -> str:
        return "the Teams webhook"

    def send(self, text: str) -> None:
        # urllib rather than httpx: httpx logs every request's URL at INFO, and this URL is
        # the webhook's credential.
        request = urllib.request.Request(
            self._url.get_secret_value(),
            data=json.dumps({"text": text}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS):
                pass
        except urllib.error.HTTPError as error:
            raise NoticeError(
                f"the webhook answered HTTP {error.code}: check customize.admin_teams_webhook_url "
                "(a webhook stops working when its connector or workflow is removed)"
            ) from None
        except (urllib.error.URLError, OSError) as error:  # the message names no URL
            reason = getattr(error, "reason", error)
            raise NoticeError(f"the webhook could not be reached ({reason})") from None


def admin_notifiers(settings: LoreSettings) -> list[AdminNotifier]:
    """The places `settings.customize` names: the admin Slack channel (with the bot token) and
    the Teams webhook."""
    customize = settings.customize
    notifiers: list[AdminNotifier] = []
    if customize.admin_slack_channel:
        if settings.slack.bot_token is None:
            log.warning(
                "customize.admin_slack_channel is set but SLACK_BOT_TOKEN is not: results are not posted to Slack"
            )
        else:
            notifiers.append(
                SlackChannelNotifier(settings.slack.bot_token, customize.admin_slack_channel, settings.slack.api_url)
            )
    if customize.admin_teams_webhook_url is not None and customize.admin_teams_webhook_url.get_secret_value():
        notifiers.append(TeamsWebhookNotifier(customize.admin_teams_webhook_url))
    return notifiers


def notify(notifiers: Sequence[AdminNotifier], text: str) -> None:
    """Send `text` to every notifier; failures are logged."""
    for notifier in notifiers:
        try:
            notifier.send(text)
        except NoticeError as error:
            log.warning("Could not notify %s: %s", notifier.target, error)
