"""The Slack app manifests: valid against Slack's schema, and subscribing to exactly the
events, commands and scopes the code registers and uses."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from bot.app import Services
from bot.platforms.slack.app import SlackBot, build_slack_bot
from bot.platforms.slack.scopes import EVENT_SCOPES, METHOD_SCOPES, required_scopes
from bot.server import Workload
from bot.settings import SlackSettings
from tests.support.slack_api import BOT_TOKEN, SIGNING_SECRET

MANIFESTS = Path(__file__).resolve().parents[2] / "manifests" / "slack"
SCHEMA = Path(__file__).resolve().parent / "schemas" / "manifest.schema.1.0.0.json"
VARIANTS = ["manifest.yaml", "manifest-http.yaml"]


def _load(name: str) -> dict[str, Any]:
    return yaml.safe_load((MANIFESTS / name).read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def bot(stack: Services) -> Iterator[SlackBot]:
    settings = SlackSettings(bot_token=BOT_TOKEN, signing_secret=SIGNING_SECRET)
    services = dataclasses.replace(stack, settings=stack.settings.model_copy(update={"slack": settings}))
    bot = build_slack_bot(services, Workload())
    yield bot
    services.conversation.close()  # the answer workers the bot was built with


@pytest.mark.parametrize("name", VARIANTS)
def test_manifest_is_valid_against_slacks_schema(name: str) -> None:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    jsonschema.validate(_load(name), schema)


@pytest.mark.parametrize("name", VARIANTS)
def test_manifest_subscribes_to_what_the_code_handles(name: str, bot: SlackBot) -> None:
    manifest = _load(name)
    subscribed = manifest["settings"]["event_subscriptions"]["bot_events"]
    assert set(subscribed) == bot.subscriptions.bot_events
    # The schema accepts any string as an event name; check each is a real one we map.
    assert all(event in EVENT_SCOPES for event in subscribed)
    commands = {entry["command"] for entry in manifest["features"]["slash_commands"]}
    assert commands == bot.subscriptions.commands
    assert manifest["settings"]["interactivity"]["is_enabled"] is bot.subscriptions.interactivity
    # DMs reach the bot only with the Messages tab open for writing.
    home = manifest["features"]["app_home"]
    assert home["messages_tab_enabled"] and not home["messages_tab_read_only_enabled"]


@pytest.mark.parametrize("name", VARIANTS)
def test_manifest_asks_for_exactly_the_scopes_needed(name: str, bot: SlackBot) -> None:
    granted = set(_load(name)["oauth_config"]["scopes"]["bot"])
    # Web API methods the bot calls are checked against METHOD_SCOPES by every conversation test.
    needed = required_scopes(bot.subscriptions.bot_events, METHOD_SCOPES, bool(bot.subscriptions.commands))
    assert granted == needed


def test_modes_differ_only_in_how_slack_reaches_the_bot() -> None:
    socket, http = _load("manifest.yaml"), _load("manifest-http.yaml")
    assert socket["settings"]["socket_mode_enabled"] is True
    assert http["settings"]["socket_mode_enabled"] is False
    url = http["settings"]["event_subscriptions"]["request_url"]
    assert url.endswith("/slack/events")
    assert http["settings"]["interactivity"]["request_url"] == url
    assert all(command["url"] == url for command in http["features"]["slash_commands"])
    assert "request_url" not in socket["settings"]["event_subscriptions"]
    for section in ("oauth_config", "display_information"):
        assert socket[section] == http[section]
    assert (
        socket["settings"]["event_subscriptions"]["bot_events"] == http["settings"]["event_subscriptions"]["bot_events"]
    )
