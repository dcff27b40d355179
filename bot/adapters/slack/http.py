"""`POST /slack/events`: Slack's HTTP requests (events, slash commands, interactivity) into bolt.

The signature is checked before the body is parsed, so a forged request gets 401 whatever it
contains; a signed body that is not a Slack request gets 400 rather than bolt's 500.
"""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.signature import SignatureVerifier

log = logging.getLogger(__name__)


class SlackEventsEndpoint:
    """The aiohttp handler in front of the bolt app."""

    def __init__(self, app: AsyncApp, signing_secret: str) -> None:
        self._app = app
        self._verifier = SignatureVerifier(signing_secret)

    async def handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        if not self._signed(raw, request):
            return web.json_response({"error": "invalid or stale signature"}, status=401)
        try:
            body = raw.decode("utf-8")
        except UnicodeDecodeError:
            return _bad_request("the body is not UTF-8")
        problem = _malformed(body, request.content_type)
        if problem:
            return _bad_request(problem)
        bolt_request = AsyncBoltRequest(
            body=body, query=request.query_string, headers=dict(request.headers)
        )
        return await to_aiohttp_response(await self._app.async_dispatch(bolt_request))

    def _signed(self, raw: bytes, request: web.Request) -> bool:
        try:
            return self._verifier.is_valid(
                body=raw,
                timestamp=request.headers.get("X-Slack-Request-Timestamp"),
                signature=request.headers.get("X-Slack-Signature"),
            )
        except ValueError:  # a timestamp that is not a number
            return False


def _bad_request(reason: str) -> web.Response:
    log.warning("rejected a signed but malformed Slack request: %s", reason)
    return web.json_response({"error": f"malformed request: {reason}"}, status=400)


def _malformed(body: str, content_type: str) -> str | None:
    """Why `body` is not a Slack request, or None when it looks like one."""
    if content_type == "application/json" or body.lstrip().startswith("{"):
        parsed = _json_object(body)
        if parsed is None or not isinstance(parsed.get("type"), str):
            return "expected a JSON object with a 'type'"
        return None
    form = dict(parse_qsl(body, keep_blank_values=True))
    if "payload" in form:
        payload = _json_object(form["payload"])
        if payload is None or not isinstance(payload.get("type"), str):
            return "expected payload= to hold a JSON object with a 'type'"
        return None
    if "command" in form or "ssl_check" in form:
        return None
    return "expected an event (JSON), a slash command or an interaction payload"


def _json_object(text: str) -> dict[str, Any] | None:
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
