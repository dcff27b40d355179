"""`POST /api/messages`: the Bot Framework endpoint Teams sends activities to.

The HTTP edge is ours rather than `CloudAdapter.process`, so that every bad request gets a
clear status instead of a 500: a body that is not JSON or not an activity → 400 (415 for
another content type), a missing or invalid token in production mode → 401. Authentication
itself is botbuilder's code; the activity then runs through `CloudAdapter.process_activity`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import requests
from aiohttp import web
from botbuilder.core import InvokeResponse, TurnContext
from botbuilder.integration.aiohttp import CloudAdapter
from botbuilder.schema import Activity
from botframework.connector.auth import BotFrameworkAuthentication
from msrest.serialization import Model

from bot.conversation.service import apology, new_error_id
from bot.identity.cache import TtlCache
from bot.platforms.teams.auth import bot_framework_authentication
from bot.platforms.teams.handlers import TYPING_INTERVAL_SECONDS, LoreTeamsBot
from bot.platforms.teams.membership import tenant_allow_list
from bot.platforms.teams.rendering import text_activity
from bot.platforms.teams.streaming import UPDATE_INTERVAL_SECONDS
from bot.platforms.teams.users import TeamsEmails
from bot.server import WORKLOAD, Workload, is_loopback

if TYPE_CHECKING:
    from bot.app import Services

log = logging.getLogger(__name__)

MESSAGES_PATH = "/api/messages"
SHUTDOWN_GRACE_SECONDS = 60.0
# Real activities (cards included) nest about ten levels; far deeper is an attack on parsers.
MAX_JSON_DEPTH = 64


def teams_routes(
    services: Services,
    *,
    openid_metadata_url: str | None = None,
    typing_interval: float = TYPING_INTERVAL_SECONDS,
    stream_interval: float | None = UPDATE_INTERVAL_SECONDS,
) -> Callable[[web.Application], None]:
    """Build the Teams bot over `services` and return what adds `POST /api/messages` to an
    aiohttp app. `openid_metadata_url` points token validation at another OpenID metadata
    document than the Bot Framework's (tests, private clouds); `stream_interval=None` turns
    streamed replies off."""
    # Built now, so a configuration error or the local-mode warning shows at startup.
    authentication = bot_framework_authentication(services.settings.teams, openid_metadata_url=openid_metadata_url)
    tenants = tenant_allow_list(services.settings.teams)

    def add_routes(app: web.Application) -> None:
        workload = app.get(WORKLOAD)
        if workload is None:  # an app not made by `create_web_app`: finish our own work
            workload = Workload()
            app.on_shutdown.append(lambda _app: workload.drain(SHUTDOWN_GRACE_SECONDS))
        bot = LoreTeamsBot(
            services.conversation,
            services.answers,
            services.sent_messages,
            workload,
            TeamsEmails(
                TtlCache(ttl_seconds=services.settings.permissions.identity_cache_seconds),
                services.directory,
            ),
            tenants,
            typing_interval=typing_interval,
            stream_interval=stream_interval,
        )
        local = not services.settings.teams.app_id
        app.router.add_post(MESSAGES_PATH, MessagesEndpoint(authentication, bot, local).handle)

    return add_routes


class MessagesEndpoint:
    """Parses, authenticates and dispatches one Bot Framework request."""

    def __init__(self, authentication: BotFrameworkAuthentication, bot: LoreTeamsBot, local: bool = False) -> None:
        """`local`: no app id, so no token is checked (the Bot Framework Emulator's mode)."""
        self._authentication = authentication
        self._local = local
        self._adapter = CloudAdapter(authentication)
        self._adapter.on_turn_error = self._on_turn_error
        self.bot = bot

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Handle `POST /api/messages`: the token first (in production mode), then the body."""
        header = request.headers.get("Authorization")
        if not self._local:
            refused = await self._check_token(header)
            if refused is not None:
                return refused
        if request.content_type != "application/json":
            return _error(415, "send the activity as application/json")
        try:
            body = json.loads(await request.read())
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
            return _error(400, "the body is not valid JSON")
        if _depth(body) > MAX_JSON_DEPTH:
            return _error(400, f"the activity is nested more than {MAX_JSON_DEPTH} levels deep")
        activity, problem = _parse_activity(body)
        if activity is None:
            return _error(400, problem)
        if self._local and not is_loopback(urlsplit(activity.service_url).hostname):
            # Unauthenticated, the serviceUrl is whatever the sender wrote: the roster would be
            # fetched from it and the answer posted to it (impersonation, request forgery).
            log.warning("teams: local mode refused serviceUrl %s", activity.service_url)
            return _error(
                403,
                "local mode (no MICROSOFT_APP_ID) only talks to a Bot Framework Emulator on "
                "this machine: the serviceUrl must be a loopback address",
            )

        try:
            # Again with the activity: the token's serviceurl claim and channel endorsement.
            authenticated = await self._authentication.authenticate_request(activity, header)
        except requests.RequestException as error:
            log.error("teams: cannot fetch the Bot Framework token signing keys: %s", error)
            return _error(503, "token signing keys unavailable")
        except Exception as error:  # botbuilder signals a bad token with many exception types
            log.warning("teams: rejected request for %s: %s", activity.conversation.id, error)
            return _error(401, "missing or invalid Bot Framework token")

        try:
            invoke = await self._adapter.process_activity(authenticated, activity, self.bot.on_turn)
        except Exception:
            error_id = new_error_id()
            log.exception("teams: processing activity %s failed (error id %s)", activity.id, error_id)
            return _error(500, f"internal error {error_id}")
        return _invoke_response(invoke) if invoke is not None else web.Response(status=200)

    async def _check_token(self, header: str | None) -> web.Response | None:
        """A 401 (503 when the signing keys cannot be fetched) unless `header` holds a valid
        Bot Framework token for this bot, checked before the body is even read."""
        if not header:
            return _error(401, "missing or invalid Bot Framework token")
        try:
            # The activity-free check botbuilder offers (signature, issuer, audience, expiry);
            # an empty channel id skips only the endorsement check, done with the activity.
            await self._authentication.authenticate_streaming_request(header, "")
        except requests.RequestException as error:
            log.error("teams: cannot fetch the Bot Framework token signing keys: %s", error)
            return _error(503, "token signing keys unavailable")
        except Exception as error:  # botbuilder signals a bad token with many exception types
            log.warning("teams: rejected a request before reading it: %s", error)
            return _error(401, "missing or invalid Bot Framework token")
        return None

    async def _on_turn_error(self, turn_context: TurnContext, error: Exception) -> None:
        error_id = new_error_id()
        log.error(
            "teams: turn failed for %s (error id %s)",
            turn_context.activity.conversation.id,
            error_id,
            exc_info=error,
        )
        if turn_context.activity.type == "message":
            try:
                await turn_context.send_activity(text_activity(apology(error_id)))
            except Exception:
                log.exception("teams: could not send the apology for error id %s", error_id)


def _depth(value: object) -> int:
    """How deeply JSON containers nest in `value` (iteratively: no recursion to exhaust)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        deepest = max(deepest, level)
        if deepest > MAX_JSON_DEPTH:
            break
        stack.extend((child, level + 1) for child in children)
    return deepest


def _parse_activity(body: object) -> tuple[Activity | None, str]:
    if not isinstance(body, dict):
        return None, "the body must be a JSON object (a Bot Framework activity)"
    try:
        activity = Activity().deserialize(body)
    except ValueError as error:  # msrest's DeserializationError is a ValueError
        return None, f"not a Bot Framework activity: {error}"
    if not isinstance(activity.type, str) or not activity.type:
        return None, "the activity has no type"
    if not isinstance(activity.service_url, str) or not activity.service_url.startswith(("https://", "http://")):
        return None, "the activity has no serviceUrl"
    for name, account in (
        ("conversation", activity.conversation),
        ("from", activity.from_property),
        ("recipient", activity.recipient),
    ):
        if account is None or not isinstance(account.id, str) or not account.id:
            return None, f"the activity has no {name}.id"
    return activity, ""


def _invoke_response(invoke: InvokeResponse) -> web.Response:
    status = int(invoke.status or 200)
    body = invoke.body
    if body is None:
        return web.Response(status=status)
    return web.json_response(body.serialize() if isinstance(body, Model) else body, status=status)


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)
