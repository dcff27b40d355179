"""Mounts the Slack adapter on the web app `bot.server.create_web_app` builds."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from aiohttp import web

from bot.platforms.slack.app import SlackBot, build_slack_bot
from bot.platforms.slack.http import SlackEventsEndpoint
from bot.platforms.slack.socket_mode import SocketModeConnection
from bot.server import WORKLOAD

if TYPE_CHECKING:
    from bot.app import Services

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"


def slack_routes(services: Services, progress_interval: float = 1.0) -> Callable[[web.Application], None]:
    """Mounts the Slack adapter on the web app: `POST /slack/events` in HTTP mode, a Socket
    Mode connection opened on startup and closed on shutdown otherwise. `progress_interval`:
    the least time between two streaming updates of one answer."""
    settings = services.settings.slack

    def mount(app: web.Application) -> None:
        bot = build_slack_bot(services, app[WORKLOAD], progress_interval)
        if settings.app_token is not None:
            _mount_socket_mode(app, bot, settings.app_token.get_secret_value())
        else:
            secret = settings.signing_secret.get_secret_value() if settings.signing_secret else ""
            endpoint = SlackEventsEndpoint(bot.app, secret)
            app.router.add_post(EVENTS_PATH, endpoint.handle)
            log.info("Slack: HTTP mode on %s", EVENTS_PATH)

    return mount


def _mount_socket_mode(app: web.Application, bot: SlackBot, app_token: str) -> None:
    # The Socket Mode client needs a running event loop, so it is created on startup.
    connections: list[SocketModeConnection] = []

    async def connect(_app: web.Application) -> None:
        connection = SocketModeConnection(bot.app, app_token)
        await connection.connect()
        connections.append(connection)
        log.info("Slack: Socket Mode connected")

    async def disconnect(_app: web.Application) -> None:
        # On shutdown, before the answers in flight are awaited: stop taking new events first.
        for connection in connections:
            await connection.close()

    app.on_startup.append(connect)
    app.on_shutdown.append(disconnect)
