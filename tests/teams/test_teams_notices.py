"""Notices to the admins' Teams channel (the retraining result) through its incoming webhook on
loopback: delivered as `{"text": ...}`, failures logged without the webhook URL (a credential)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from pydantic import SecretStr

from bot.customize.notify import notify
from bot.platforms.admin_notices import admin_notifiers
from bot.platforms.teams.notices import TeamsWebhookNotifier
from bot.settings import CustomizeSettings, LoreSettings
from tests.support.teams_webhook import WEBHOOK_SECRET, teams_webhook

TEXT = "Lore retraining skipped: only 0 new feedback items"


async def test_failed_deliveries_are_logged_without_the_webhook_url(caplog: pytest.LogCaptureFixture) -> None:
    async with teams_webhook(status=404) as webhook:
        notifiers = [
            TeamsWebhookNotifier(SecretStr(webhook.url)),
            TeamsWebhookNotifier(SecretStr(f"http://127.0.0.1:9/webhookb2/{WEBHOOK_SECRET}")),  # nobody listens
        ]
        await asyncio.to_thread(notify, notifiers, TEXT)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("HTTP 404" in w for w in warnings) and any("could not be reached (" in w for w in warnings), warnings
    assert webhook.posts == [{"text": TEXT}]
    assert WEBHOOK_SECRET not in caplog.text


def test_the_webhook_is_notified_only_when_its_url_is_set(tmp_path: Path) -> None:
    def webhook(url: str | None) -> LoreSettings:
        return LoreSettings(
            home=tmp_path, customize=CustomizeSettings(admin_teams_webhook_url=None if url is None else SecretStr(url))
        )

    assert admin_notifiers(webhook(None)) == [] and admin_notifiers(webhook("")) == []
    configured = webhook("https://teams.example/webhookb2/1")
    assert [notifier.target for notifier in admin_notifiers(configured)] == ["the Teams webhook"]
