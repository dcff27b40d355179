"""Notices to the admins in a Teams channel (the retraining result): a POST of `{"text": ...}`
to the channel's incoming webhook. The webhook URL is itself a credential: it never appears in a
log line or an error."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

from pydantic import SecretStr

from bot.customize.notify import NOTICE_TIMEOUT_SECONDS, AdminNotifier, NoticeError
from bot.settings import LoreSettings


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
            with urllib.request.urlopen(request, timeout=NOTICE_TIMEOUT_SECONDS):
                pass
        except urllib.error.HTTPError as error:
            raise NoticeError(
                f"the webhook answered HTTP {error.code}: check customize.admin_teams_webhook_url "
                "(a webhook stops working when its connector or workflow is removed)"
            ) from None
        except (urllib.error.URLError, OSError) as error:  # the message names no URL
            reason = getattr(error, "reason", error)
            raise NoticeError(f"the webhook could not be reached ({reason})") from None


def teams_admin_notifier(settings: LoreSettings) -> AdminNotifier | None:
    """The notifier for `customize.admin_teams_webhook_url` (None when unset or empty)."""
    url = settings.customize.admin_teams_webhook_url
    if url is None or not url.get_secret_value():
        return None
    return TeamsWebhookNotifier(url)
