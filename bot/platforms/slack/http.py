"""`POST /slack/events`: Slack's HTTP requests (events, slash commands, interactivity) into bolt.

The signature is checked before the body is parsed, so a forged request gets 401 whatever it
contains; a signed body that is not a Slack request gets 400 rather than bolt's 500.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest

log = logging.getLogger(__name__)

# Slack's replay window: older (or future) timestamps are refused even when correctly signed.
MAX_AGE_SECONDS = 300


class SlackEventsEndpoint:
    """The aiohttp handler in front of the bolt app."""

    def __init__(self, app: AsyncApp, signing_secret: str, clock: Callable[[], float] = time.time) -> None:
        self._app = app
        self._secret = signing_secret.encode()
        self._clock = clock

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
        bolt_request = AsyncBoltRequest(body=body, query=request.query_string, headers=dict(request.headers))
        return await to_aiohttp_response(await self._app.async_dispatch(bolt_request))

    def _signed(self, raw: bytes, request: web.Request) -> bool:
        """Slack's v0 signature over the raw bytes, within five minutes of now."""
        timestamp = request.headers.get("X-Slack-Request-Timestamp", "")
        signature = request.headers.get("X-Slack-Signature", "")
        # Slack sends ASCII digits and hex; anything else ("²", a non-ASCII signature) is
        # refused here rather than failing in int() or compare_digest (a 500).
        if not (timestamp.isascii() and timestamp.isdigit() and signature.isascii()):
            return False
        if abs(self._clock() - int(timestamp)) > MAX_AGE_SECONDS:
            return False
        base = b"v0:" + timestamp.encode() + b":" + raw
        expected = "v0=" + hmac.new(self._secret, base, hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, signature)


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
