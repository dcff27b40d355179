"""Slack's side of the wire, on loopback, for tests.

- `MockSlackApi`: a Web API server (`/api/<method>`) that records every call, answers like
  Slack, checks payloads against Slack's documented limits (a violation is recorded and
  answered with Slack's error, and `assert_clean()` fails the test), keeps the messages as
  posted and updated, serves `response_url`s (`/respond/<key>`) and a Socket Mode websocket
  (`/socket`, the URL `apps.connections.open` hands out).
- `SlackSender`: sends requests the way Slack does: signed JSON event callbacks, form-encoded
  slash commands and `payload=` interactions.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode

import aiohttp
from aiohttp import web

BOT_TOKEN = "xoxb-test-token"
APP_TOKEN = "xapp-test-token"
SIGNING_SECRET = "test-signing-secret"
BOT_USER = "UBOTLORE"
BOT_ID = "BLORE"
TEAM = "T0TEST"
APP_ID = "A0LORE"

# Slack's documented limits (Block Kit reference, chat.postMessage, views.open).
TEXT_LIMIT = 40_000
MESSAGE_BLOCKS_LIMIT = 50
MODAL_BLOCKS_LIMIT = 100
SECTION_TEXT_LIMIT = 3000
CONTEXT_ELEMENTS_LIMIT = 10
ACTIONS_ELEMENTS_LIMIT = 25
BUTTON_TEXT_LIMIT = 75
BUTTON_VALUE_LIMIT = 2000
ID_LIMIT = 255
MODAL_TITLE_LIMIT = 24
METADATA_LIMIT = 3000
PLACEHOLDER_LIMIT = 150
# What may follow `<` in mrkdwn; anything else means text was not escaped.
_CONTROL = re.compile(r"<(?:https?://|mailto:|@[UW]|#C|!)[^<>]*>")
_ENTITY = re.compile(r"&(?:amp|lt|gt);")


@dataclass(frozen=True)
class ApiCall:
    method: str
    args: dict[str, Any]
    token: str | None
    at: float


@dataclass
class Message:
    """A message as Slack would show it now (after all updates)."""

    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]]
    thread_ts: str | None
    ephemeral_for: str | None = None
    updates: list[float] = field(default_factory=list)  # times of chat.update calls


class MockSlackApi:
    """Slack's Web API, response URLs and Socket Mode server on 127.0.0.1."""

    def __init__(self) -> None:
        self.calls: list[ApiCall] = []
        self.violations: list[str] = []
        self.messages: dict[tuple[str, str], Message] = {}
        self.responses: list[tuple[str, dict[str, Any]]] = []  # (response_url key, body)
        self.acks: dict[str, dict[str, Any]] = {}  # Socket Mode acks by envelope id
        # users.info answers by user id (fields over a member of TEAM with <id>@example.com);
        # conversations.info by channel id (fields over an unshared channel).
        self.users: dict[str, dict[str, Any]] = {}
        self.channels: dict[str, dict[str, Any]] = {}
        self._failures: list[tuple[str, str, Callable[[dict[str, Any]], bool]]] = []
        self._delays: dict[str, float] = {}
        self._ts = itertools.count(1)
        self._sockets: list[web.WebSocketResponse] = []
        self._connected = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.port = 0

    # --- lifecycle -----------------------------------------------------------------------

    async def start(self, port: int = 0) -> MockSlackApi:
        """Serve on 127.0.0.1:`port` (0: a free one; a bot started earlier may name its port)."""
        app = web.Application()
        app.router.add_post("/api/{method}", self._api)
        # slack_sdk calls some read methods (users.info) with GET and query parameters.
        app.router.add_get("/api/{method}", self._api)
        app.router.add_post("/respond/{key}", self._respond)
        app.router.add_get("/socket", self._socket)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def stop(self) -> None:
        for socket in list(self._sockets):
            await socket.close()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    def response_url(self, key: str) -> str:
        return f"http://127.0.0.1:{self.port}/respond/{key}"

    # --- test controls --------------------------------------------------------------------

    def fail(self, method: str, error: str, when: Callable[[dict[str, Any]], bool] = lambda _: True) -> None:
        """Answer calls to `method` matching `when` with Slack error `error`."""
        self._failures.append((method, error, when))

    def slow_down(self, method: str, seconds: float) -> None:
        """Answer calls to `method` only after `seconds` (a slow or distant Slack)."""
        self._delays[method] = seconds

    def calls_to(self, method: str) -> list[ApiCall]:
        return [call for call in self.calls if call.method == method]

    def thread(self, channel: str, thread_ts: str) -> list[Message]:
        """Public messages in a thread (replies posted with that thread_ts), oldest first."""
        return [
            m
            for m in self.messages.values()
            if m.channel == channel and m.thread_ts == thread_ts and m.ephemeral_for is None
        ]

    def ephemeral_for(self, user: str) -> list[Message]:
        return [m for m in self.messages.values() if m.ephemeral_for == user]

    async def wait_until(self, condition: Callable[[], Any], timeout: float = 60.0) -> Any:
        """Poll until `condition()` is truthy; returns its value, or fails after `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            value = condition()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout}s; calls: {self.summary()}")
            await asyncio.sleep(0.02)

    def summary(self) -> list[str]:
        return [call.method for call in self.calls]

    def assert_clean(self) -> None:
        assert not self.violations, "invalid Slack payloads:\n" + "\n".join(self.violations)

    # --- Socket Mode ----------------------------------------------------------------------

    async def wait_connected(self, timeout: float = 10.0) -> None:
        await asyncio.wait_for(self._connected.wait(), timeout)

    async def send_envelope(self, kind: str, payload: dict[str, Any], accepts_response_payload: bool = False) -> str:
        """Push one envelope to the connected app; returns its envelope id."""
        envelope_id = uuid.uuid4().hex
        envelope = {
            "envelope_id": envelope_id,
            "type": kind,
            "payload": payload,
            "accepts_response_payload": accepts_response_payload,
            "retry_attempt": 0,
            "retry_reason": "",
        }
        await self._sockets[-1].send_str(json.dumps(envelope))
        return envelope_id

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        self._sockets.append(socket)
        await socket.send_str(json.dumps({"type": "hello", "num_connections": 1}))
        self._connected.set()
        async for frame in socket:
            if frame.type == aiohttp.WSMsgType.TEXT:
                ack = json.loads(frame.data)
                self.acks[ack["envelope_id"]] = ack
        self._sockets.remove(socket)
        return socket

    # --- Web API ----------------------------------------------------------------------------

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        args = await _read_args(request)
        token = request.headers.get("Authorization", "").removeprefix("Bearer ") or args.get("token")
        self.calls.append(ApiCall(method, args, token, time.monotonic()))
        expected = APP_TOKEN if method == "apps.connections.open" else BOT_TOKEN
        if token != expected:
            self.violations.append(f"{method}: called with token {token!r}")
            return web.json_response({"ok": False, "error": "invalid_auth"})
        problems = payload_problems(method, args)
        if problems:
            self.violations.extend(f"{method}: {problem}" for problem in problems)
            return web.json_response({"ok": False, "error": "invalid_arguments"})
        for failing, error, when in self._failures:
            if failing == method and when(args):
                return web.json_response({"ok": False, "error": error})
        if method in self._delays:
            await asyncio.sleep(self._delays[method])
        return web.json_response(self._answer(method, args))

    def _answer(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        if method == "auth.test":
            return {
                "ok": True,
                "url": "https://lore-test.slack.com/",
                "team": "Test",
                "user": "lore",
                "team_id": TEAM,
                "user_id": BOT_USER,
                "bot_id": BOT_ID,
            }
        if method == "apps.connections.open":
            return {"ok": True, "url": f"ws://127.0.0.1:{self.port}/socket"}
        if method in ("chat.postMessage", "chat.postEphemeral"):
            ts = f"{1_700_000_000 + next(self._ts)}.000100"
            ephemeral = method == "chat.postEphemeral"
            self.messages[(args["channel"], ts)] = Message(
                channel=args["channel"],
                ts=ts,
                text=args.get("text", ""),
                blocks=args.get("blocks") or [],
                thread_ts=args.get("thread_ts"),
                ephemeral_for=args["user"] if ephemeral else None,
            )
            if ephemeral:
                return {"ok": True, "message_ts": ts}
            return {"ok": True, "channel": args["channel"], "ts": ts, "message": {"ts": ts}}
        if method == "chat.update":
            message = self.messages.get((args["channel"], args["ts"]))
            if message is None:
                return {"ok": False, "error": "message_not_found"}
            message.text = args.get("text", "")
            message.blocks = args.get("blocks") or []
            message.updates.append(time.monotonic())
            return {"ok": True, "channel": args["channel"], "ts": args["ts"]}
        if method == "views.open":
            return {"ok": True, "view": {"id": "V" + uuid.uuid4().hex[:8], **args["view"]}}
        if method == "reactions.add":
            return {"ok": True}
        if method == "users.info":
            user = args["user"]
            return {
                "ok": True,
                "user": {
                    "id": user,
                    "team_id": TEAM,
                    "name": user.lower(),
                    "profile": {"email": f"{user.lower()}@example.com"},
                    **self.users.get(user, {}),
                },
            }
        if method == "conversations.info":
            channel = args["channel"]
            flags = {"is_shared": False, "is_ext_shared": False, "is_org_shared": False}
            return {"ok": True, "channel": {"id": channel, **flags, **self.channels.get(channel, {})}}
        self.violations.append(f"{method}: not a method this mock (or the bot) should use")
        return {"ok": False, "error": "unknown_method"}

    async def _respond(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.responses.append((request.match_info["key"], body))
        problems = _blocks_problems(body.get("blocks") or [], MESSAGE_BLOCKS_LIMIT)
        if problems:
            self.violations.extend(f"response_url: {p}" for p in problems)
            return web.Response(status=400, text="invalid_blocks")
        return web.Response(text="ok")


async def _read_args(request: web.Request) -> dict[str, Any]:
    if request.method == "GET":
        return dict(request.query)
    if request.content_type == "application/json":
        args = await request.json()
    else:
        args = dict(parse_qsl(await request.text(), keep_blank_values=True))
    # Form-encoded calls carry structured arguments as JSON strings.
    for key in ("blocks", "view", "attachments"):
        if isinstance(args.get(key), str):
            args[key] = json.loads(args[key])
    return args


# --- payload checks -------------------------------------------------------------------------


def payload_problems(method: str, args: dict[str, Any]) -> list[str]:
    """Why Slack would reject (or mis-render) this call; empty when it is fine."""
    problems: list[str] = []
    if method in ("chat.postMessage", "chat.update", "chat.postEphemeral"):
        required = {
            "chat.postMessage": ["channel"],
            "chat.update": ["channel", "ts"],
            "chat.postEphemeral": ["channel", "user"],
        }[method]
        problems += [f"missing {name}" for name in required if not args.get(name)]
        text, blocks = args.get("text") or "", args.get("blocks") or []
        if not text and not blocks:
            problems.append("neither text nor blocks")
        if len(text) > TEXT_LIMIT:
            problems.append(f"text is {len(text)} characters (limit {TEXT_LIMIT})")
        problems += mrkdwn_problems(text, "text")
        problems += _blocks_problems(blocks, MESSAGE_BLOCKS_LIMIT)
    elif method == "views.open":
        if not args.get("trigger_id"):
            problems.append("missing trigger_id")
        problems += _view_problems(args.get("view") or {})
    return problems


def _view_problems(view: dict[str, Any]) -> list[str]:
    problems = []
    if view.get("type") != "modal":
        problems.append("view type must be modal")
    for key in ("title", "submit", "close"):
        if key in view:
            problems += _text_problems(view[key], f"view.{key}", MODAL_TITLE_LIMIT, plain=True)
    if "title" not in view:
        problems.append("view has no title")
    if len(view.get("private_metadata", "")) > METADATA_LIMIT:
        problems.append("private_metadata too long")
    if len(view.get("callback_id", "")) > ID_LIMIT:
        problems.append("callback_id too long")
    problems += _blocks_problems(view.get("blocks") or [], MODAL_BLOCKS_LIMIT)
    return problems


def _blocks_problems(blocks: list[dict[str, Any]], limit: int) -> list[str]:
    problems = []
    if len(blocks) > limit:
        problems.append(f"{len(blocks)} blocks (limit {limit})")
    block_ids: set[str] = set()
    action_ids: set[str] = set()
    for index, block in enumerate(blocks):
        where = f"block {index} ({block.get('type')})"
        block_id = block.get("block_id")
        if block_id is not None:
            if len(block_id) > ID_LIMIT or block_id in block_ids:
                problems.append(f"{where}: block_id too long or repeated")
            block_ids.add(block_id)
        kind = block.get("type")
        if kind == "section":
            if "text" not in block and "fields" not in block:
                problems.append(f"{where}: no text")
            if "text" in block:
                problems += _text_problems(block["text"], where, SECTION_TEXT_LIMIT)
        elif kind == "context":
            elements = block.get("elements") or []
            if not 1 <= len(elements) <= CONTEXT_ELEMENTS_LIMIT:
                problems.append(f"{where}: {len(elements)} elements")
            for element in elements:
                problems += _text_problems(element, where, SECTION_TEXT_LIMIT)
        elif kind == "actions":
            elements = block.get("elements") or []
            if not 1 <= len(elements) <= ACTIONS_ELEMENTS_LIMIT:
                problems.append(f"{where}: {len(elements)} elements")
            for element in elements:
                problems += _button_problems(element, where, action_ids)
        elif kind == "input":
            problems += _text_problems(block.get("label") or {}, where, 2000, plain=True)
            element = block.get("element") or {}
            if "placeholder" in element:
                problems += _text_problems(element["placeholder"], where, PLACEHOLDER_LIMIT, True)
            if len(element.get("action_id", "")) > ID_LIMIT:
                problems.append(f"{where}: action_id too long")
        elif kind not in ("divider", "header", "image", "rich_text"):
            problems.append(f"{where}: unknown block type")
    return problems


def _button_problems(element: dict[str, Any], where: str, action_ids: set[str]) -> list[str]:
    problems = []
    if element.get("type") != "button":
        return [f"{where}: unexpected element {element.get('type')}"]
    problems += _text_problems(element.get("text") or {}, where, BUTTON_TEXT_LIMIT, plain=True)
    action_id = element.get("action_id", "")
    if not action_id or len(action_id) > ID_LIMIT or action_id in action_ids:
        problems.append(f"{where}: action_id missing, too long or repeated")
    action_ids.add(action_id)
    if len(element.get("value", "")) > BUTTON_VALUE_LIMIT:
        problems.append(f"{where}: button value too long")
    if element.get("style") not in (None, "primary", "danger"):
        problems.append(f"{where}: bad button style")
    return problems


def _text_problems(obj: dict[str, Any], where: str, limit: int, plain: bool = False) -> list[str]:
    kind, text = obj.get("type"), obj.get("text")
    if kind not in ("plain_text", "mrkdwn") or (plain and kind != "plain_text"):
        return [f"{where}: text object of type {kind!r}"]
    if not isinstance(text, str) or not text:
        return [f"{where}: empty text"]
    if len(text) > limit:
        return [f"{where}: text is {len(text)} characters (limit {limit})"]
    return mrkdwn_problems(text, where) if kind == "mrkdwn" else []


def mrkdwn_problems(text: str, where: str) -> list[str]:
    """Unescaped `<` or `&` (Slack would swallow or misread them)."""
    stripped = _ENTITY.sub("", _CONTROL.sub("", text))
    if "<" in stripped or "&" in stripped:
        return [f"{where}: unescaped '<' or '&' in mrkdwn: {text[:200]!r}"]
    return []


# --- requests as Slack sends them ----------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    status: int
    body: str
    seconds: float  # time to the HTTP response (the ack)

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


class SlackSender:
    """Posts signed requests to the bot's `/slack/events` like Slack does."""

    def __init__(self, url: str, api: MockSlackApi, secret: str = SIGNING_SECRET) -> None:
        self.url = url
        self.api = api
        self.secret = secret
        self._ids = itertools.count(1)
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    def sign(self, body: bytes, timestamp: int) -> str:
        base = b"v0:" + str(timestamp).encode() + b":" + body
        return "v0=" + hmac.new(self.secret.encode(), base, hashlib.sha256).hexdigest()

    async def post(
        self,
        body: bytes,
        content_type: str,
        *,
        timestamp: int | None = None,
        signature: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        """POST `body` signed (or with the given timestamp/signature)."""
        if self._session is None:
            self._session = aiohttp.ClientSession()
        timestamp = int(time.time()) if timestamp is None else timestamp
        all_headers = {
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": str(timestamp),
            "X-Slack-Signature": signature or self.sign(body, timestamp),
            **(headers or {}),
        }
        started = time.perf_counter()
        async with self._session.post(self.url, data=body, headers=all_headers) as response:
            text = await response.text()
            return Reply(response.status, text, time.perf_counter() - started)

    async def event(self, event: dict[str, Any], event_id: str | None = None, retry: int | None = None) -> Reply:
        """An Events API callback; `retry` adds Slack's retry headers."""
        body = event_callback(event, event_id or f"Ev{next(self._ids):08d}")
        headers = {}
        if retry is not None:
            headers = {"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_timeout"}
        return await self.post(json.dumps(body).encode(), "application/json", headers=headers)

    async def command(self, text: str, user: str, channel: str, command: str = "/lore") -> Reply:
        form = {
            "token": "legacy",
            "team_id": TEAM,
            "team_domain": "lore-test",
            "channel_id": channel,
            "channel_name": "general",
            "user_id": user,
            "user_name": user.lower(),
            "command": command,
            "text": text,
            "api_app_id": APP_ID,
            "response_url": self.api.response_url(f"command-{next(self._ids)}"),
            "trigger_id": f"trigger-{next(self._ids)}",
        }
        return await self.post(urlencode(form).encode(), "application/x-www-form-urlencoded")

    async def interaction(self, payload: dict[str, Any]) -> Reply:
        body = urlencode({"payload": json.dumps(payload)}).encode()
        return await self.post(body, "application/x-www-form-urlencoded")

    def button_click(self, user: str, message: Message, action_id: str) -> dict[str, Any]:
        """The `block_actions` payload for clicking button `action_id` in `message`."""
        for block in message.blocks:
            for element in block.get("elements", []):
                if element.get("action_id") == action_id:
                    return {
                        "type": "block_actions",
                        "token": "legacy",
                        "api_app_id": APP_ID,
                        "team": {"id": TEAM},
                        "user": {"id": user},
                        "container": {
                            "type": "message",
                            "message_ts": message.ts,
                            "channel_id": message.channel,
                            "is_ephemeral": message.ephemeral_for is not None,
                            **({"thread_ts": message.thread_ts} if message.thread_ts else {}),
                        },
                        "channel": {"id": message.channel},
                        "trigger_id": f"trigger-{next(self._ids)}",
                        "response_url": self.api.response_url(f"action-{next(self._ids)}"),
                        "actions": [
                            {
                                "type": "button",
                                "action_id": action_id,
                                "block_id": block.get("block_id", ""),
                                "value": element["value"],
                                "action_ts": str(time.time()),
                            }
                        ],
                    }
        raise AssertionError(f"no button {action_id!r} in message {message.ts}")

    def view_submission(self, user: str, view: dict[str, Any], answers: dict[str, str]) -> dict[str, Any]:
        """The `view_submission` payload for `view` (as sent to views.open) filled in with
        `answers` (block id → typed text; others left empty)."""
        values = {}
        for block in view["blocks"]:
            if block["type"] == "input":
                action = block["element"]["action_id"]
                values[block["block_id"]] = {
                    action: {"type": "plain_text_input", "value": answers.get(block["block_id"])}
                }
        return {
            "type": "view_submission",
            "token": "legacy",
            "api_app_id": APP_ID,
            "team": {"id": TEAM},
            "user": {"id": user},
            "trigger_id": "trigger-submit",
            "view": {**view, "id": "V1", "state": {"values": values}},
        }


def event_callback(event: dict[str, Any], event_id: str) -> dict[str, Any]:
    return {
        "token": "legacy",
        "team_id": TEAM,
        "api_app_id": APP_ID,
        "type": "event_callback",
        "event_id": event_id,
        "event_time": int(time.time()),
        "event": event,
        "authorizations": [{"team_id": TEAM, "user_id": BOT_USER, "is_bot": True}],
        "is_ext_shared_channel": False,
    }


_message_ts = itertools.count(1)


def new_ts() -> str:
    return f"{1_600_000_000 + next(_message_ts)}.000200"


def mention(text: str, user: str, channel: str, thread_ts: str | None = None) -> dict[str, Any]:
    """An `app_mention` event: `text` with the bot's mention in front."""
    ts = new_ts()
    event = {
        "type": "app_mention",
        "user": user,
        "text": f"<@{BOT_USER}> {text}",
        "ts": ts,
        "channel": channel,
        "event_ts": ts,
    }
    if thread_ts:
        event["thread_ts"] = thread_ts
    return event


def message(
    text: str,
    user: str,
    channel: str,
    channel_type: str,
    thread_ts: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A `message` event (`channel_type`: im, channel, group, mpim)."""
    ts = new_ts()
    event = {
        "type": "message",
        "user": user,
        "text": text,
        "ts": ts,
        "channel": channel,
        "channel_type": channel_type,
        "event_ts": ts,
        **extra,
    }
    if thread_ts:
        event["thread_ts"] = thread_ts
    return event
