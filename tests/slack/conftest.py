"""Fixtures for the Slack tests: the real services (indexed docs, tiny model, SQLite) behind
`lore serve`'s web app on a loopback port, and Slack's side (Web API mock, signed sender).

Every test gets fresh ids for users and channels, so tests sharing one session-wide stack (and
its database) never see each other's answers or threads.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web

from bot.app import Services
from bot.platforms.slack.routes import slack_routes
from bot.platforms.slack.scopes import METHOD_SCOPES
from bot.server import create_web_app
from bot.settings import SlackSettings
from tests.slack.slack_doubles import PuppetModel
from tests.support.slack_api import (
    BOT_TOKEN,
    SIGNING_SECRET,
    MockSlackApi,
    SlackSender,
)
from tests.support.stack import build_test_services

MANIFEST = Path(__file__).resolve().parents[2] / "manifests" / "slack" / "manifest.yaml"
# Streaming updates go out at most this often in tests (1 s in production).
PROGRESS_INTERVAL = 0.2


def fresh_id(prefix: str) -> str:
    return prefix + uuid.uuid4().hex[:10].upper()


@dataclass
class SlackRig:
    """One running bot and the Slack it talks to."""

    api: MockSlackApi
    sender: SlackSender
    services: Services
    app: web.Application
    port: int


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    services = build_test_services(tmp_path_factory.mktemp("slack-stack"))
    yield services
    services.close()


@pytest.fixture(scope="session")
def puppet_stack(stack: Services, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    """A second stack whose model writes every answer, and which tests can slow down or break
    (`services.model`)."""
    services = build_test_services(
        tmp_path_factory.mktemp("slack-puppet-stack"), model=PuppetModel(stack.model), generate="always"
    )
    yield services
    services.knowledge.close()
    services.database.close()  # not services.close(): the tiny model belongs to `stack`


@pytest.fixture
def puppet(puppet_stack: Services) -> Iterator[PuppetModel]:
    model = puppet_stack.model
    assert isinstance(model, PuppetModel)
    yield model
    model.reset()


@pytest.fixture
async def start_rig(
    stack: Services,
) -> AsyncIterator[Callable[..., Awaitable[SlackRig]]]:
    """Starts the bot on a free port; keyword arguments override Slack settings, `services`
    replaces the stack (e.g. one with a failing model)."""
    started: list[tuple[SlackRig, web.AppRunner]] = []

    async def start(services: Services | None = None, **slack: Any) -> SlackRig:
        api = await MockSlackApi().start()
        base = services or stack
        settings = SlackSettings(
            bot_token=BOT_TOKEN,
            signing_secret=SIGNING_SECRET,
            api_url=api.base_url,
            **slack,
        )
        services = dataclasses.replace(base, settings=base.settings.model_copy(update={"slack": settings}))
        app = create_web_app(services, [slack_routes(services, PROGRESS_INTERVAL)])
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        sender = SlackSender(f"http://127.0.0.1:{port}/slack/events", api)
        rig = SlackRig(api, sender, services, app, port)
        started.append((rig, runner))
        return rig

    yield start
    for rig, runner in started:
        await rig.sender.close()
        await runner.cleanup()  # waits for answers in flight
        await rig.api.stop()
        rig.api.assert_clean()
        _assert_scopes_cover(rig.api.summary())


@pytest.fixture
async def rig(start_rig: Callable[..., Awaitable[SlackRig]]) -> SlackRig:
    return await start_rig()


def _assert_scopes_cover(methods: list[str]) -> None:
    """Every Web API method the bot called is known, and the manifest grants its scope."""
    manifest = yaml.safe_load(MANIFEST.read_text())
    granted = set(manifest["oauth_config"]["scopes"]["bot"])
    for method in set(methods):
        assert method in METHOD_SCOPES, f"{method} has no entry in bot.platforms.slack.scopes"
        missing = set(METHOD_SCOPES[method]) - granted
        assert not missing, f"{method} needs {sorted(missing)}, not in the manifest"
