"""The bolt app: Lore's listeners registered on a slack-bolt `AsyncApp` whose Web API client
talks to `SLACK_API_URL`. It records what it subscribes to, so the manifest can be checked
against the code."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.conversation.service import new_error_id
from bot.errors import ConfigurationError
from bot.identity.cache import TtlCache
from bot.platforms.slack.handlers import MESSAGE_EVENTS, SlackHandlers
from bot.platforms.slack.membership import SlackMembership
from bot.platforms.slack.rendering import (
    ACTION_HELPFUL,
    ACTION_NOT_HELPFUL,
    ACTION_SHARE,
    FEEDBACK_MODAL,
)
from bot.platforms.slack.responder import Responder
from bot.platforms.slack.users import SlackEmails
from bot.server import Workload

if TYPE_CHECKING:
    from bot.app import Services

log = logging.getLogger(__name__)

COMMAND = "/lore"


@dataclass(frozen=True)
class Subscriptions:
    """What the app registered listeners for, in the manifest's terms."""

    bot_events: frozenset[str]
    commands: frozenset[str]
    interactivity: bool


class SlackBot:
    """A bolt `AsyncApp` with Lore's listeners."""

    def __init__(self, app: AsyncApp, handlers: SlackHandlers) -> None:
        self.app = app
        self._events: set[str] = set()
        self._commands: set[str] = set()
        self._interactive = False
        self._on_event("app_mention", handlers.on_mention, delivers=["app_mention"])
        self._on_event("message", handlers.on_message, delivers=MESSAGE_EVENTS.values())
        self._on_command(handlers.command, handlers.on_command)
        self._on_interaction(app.action(ACTION_HELPFUL), handlers.on_helpful)
        self._on_interaction(app.action(ACTION_NOT_HELPFUL), handlers.on_not_helpful)
        self._on_interaction(app.action(ACTION_SHARE), handlers.on_share)
        self._on_interaction(app.view(FEEDBACK_MODAL), handlers.on_feedback_submitted)
        app.error(_log_error)

    @property
    def subscriptions(self) -> Subscriptions:
        return Subscriptions(frozenset(self._events), frozenset(self._commands), self._interactive)

    def _on_event(self, event: str, listener: Callable[..., Awaitable[None]], delivers: Iterable[str]) -> None:
        self.app.event(event)(listener)
        self._events.update(delivers)

    def _on_command(self, command: str, listener: Callable[..., Awaitable[None]]) -> None:
        self.app.command(command)(listener)
        self._commands.add(command)

    def _on_interaction(self, register: Callable[..., Any], listener: Callable[..., Awaitable[None]]) -> None:
        register(listener)
        self._interactive = True


async def _log_error(error: Exception, body: dict[str, Any]) -> None:
    """Listener failures after the ack: logged with an id, never shown to Slack users raw."""
    log.error(
        "slack listener failed error_id=%s type=%s",
        new_error_id(),
        body.get("type"),
        exc_info=error,
    )


def build_slack_bot(services: Services, workload: Workload, progress_interval: float = 1.0) -> SlackBot:
    """Wire the Slack adapter from the services (Socket Mode needs no signing secret)."""
    settings = services.settings.slack
    if settings.bot_token is None:
        raise ConfigurationError("Slack needs SLACK_BOT_TOKEN (the bot's xoxb- token).")
    socket_mode = settings.app_token is not None
    if not socket_mode and settings.signing_secret is None:
        raise ConfigurationError(
            "Slack over HTTP needs SLACK_SIGNING_SECRET (app settings → Basic Information), "
            "or set SLACK_APP_TOKEN to use Socket Mode."
        )
    client = AsyncWebClient(token=settings.bot_token.get_secret_value(), base_url=settings.api_url)
    app = AsyncApp(
        name="lore",
        client=client,
        signing_secret=settings.signing_secret.get_secret_value() if settings.signing_secret else "",
        # Socket Mode messages come over the app's own authenticated websocket, unsigned.
        request_verification_enabled=not socket_mode,
        logger=logging.getLogger("bot.platforms.slack.bolt"),
    )
    responder = Responder(services.conversation, client, services.sent_messages, progress_interval)
    handlers = SlackHandlers(
        settings=settings,
        responder=responder,
        conversation=services.conversation,
        answers=services.answers,
        sent=services.sent_messages,
        workload=workload,
        membership=SlackMembership(
            client,
            SlackEmails(client, TtlCache(ttl_seconds=services.settings.permissions.identity_cache_seconds)),
            allowed_team_ids=settings.allowed_team_ids,
            allowed_enterprise_ids=settings.allowed_enterprise_ids,
            guest_group=services.settings.permissions.slack_guest_group,
            answer_in_shared_channels=settings.answer_in_shared_channels,
        ),
        access=services.access,
        command=COMMAND,
    )
    return SlackBot(app, handlers)
