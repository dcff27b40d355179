"""Notices to the admins' Slack channel (the retraining result), against the Slack API server
on loopback: delivered as the bot, failures logged without the token."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from pydantic import SecretStr

from bot.customize.notify import notify
from bot.platforms.admin_notices import admin_notifiers
from bot.platforms.slack.notices import SlackChannelNotifier
from bot.settings import CustomizeSettings, LoreSettings, SlackSettings
from tests.support.slack_api import BOT_TOKEN, MockSlackApi

ADMIN_CHANNEL = "C0ADMINS"


async def test_a_notice_is_posted_escaped_in_the_admin_channel() -> None:
    api = await MockSlackApi().start()
    try:
        notifier = SlackChannelNotifier(SecretStr(BOT_TOKEN), ADMIN_CHANNEL, api.base_url)
        await asyncio.to_thread(notify, [notifier], "Lore retraining promoted <acme-v2> & kept it")
        [call] = api.calls_to("chat.postMessage")
        assert call.args["channel"] == ADMIN_CHANNEL and call.token == BOT_TOKEN
        assert call.args["text"] == "Lore retraining promoted &lt;acme-v2&gt; &amp; kept it"
        api.assert_clean()
    finally:
        await api.stop()


async def test_a_failed_delivery_is_logged_without_the_token(caplog: pytest.LogCaptureFixture) -> None:
    api = await MockSlackApi().start()
    try:
        api.fail("chat.postMessage", "not_in_channel")
        notifier = SlackChannelNotifier(SecretStr(BOT_TOKEN), ADMIN_CHANNEL, api.base_url)
        await asyncio.to_thread(notify, [notifier], "Lore retraining skipped: only 0 new feedback items")
    finally:
        await api.stop()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("not_in_channel" in w and ADMIN_CHANNEL in w for w in warnings), warnings
    assert BOT_TOKEN not in caplog.text


def test_an_admin_channel_without_a_bot_token_is_not_notified_and_the_log_says_why(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    customize = CustomizeSettings(admin_slack_channel=ADMIN_CHANNEL)

    assert admin_notifiers(LoreSettings(home=tmp_path, customize=customize, slack=SlackSettings())) == []
    assert any("SLACK_BOT_TOKEN is not" in r.getMessage() for r in caplog.records)

    with_token = LoreSettings(home=tmp_path, customize=customize, slack=SlackSettings(bot_token=SecretStr(BOT_TOKEN)))
    assert [notifier.target for notifier in admin_notifiers(with_token)] == [f"Slack channel {ADMIN_CHANNEL}"]
