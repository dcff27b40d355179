"""Microsoft's side of the Bot Framework protocol, on loopback, for the Teams tests:

- `ConnectorMock`: the Bot Connector service a bot replies to (`serviceUrl`). Records every
  `POST /v3/conversations/{id}/activities[/{activityId}]` (and `PUT` updates), answers with a
  new activity id, and rejects an activity over Teams' 28 KB limit with 413 as Teams does.
- `TokenIssuer`: an RSA signing key, the OpenID metadata document and JWKS that publish it
  (served from a thread: botbuilder fetches them with blocking `requests`), and signed
  Bot Framework tokens.
- Builders for the activities Teams sends, and `ask_via_teams` for scripted conversations.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

import jwt
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

TEAMS_MESSAGE_LIMIT_BYTES = 28 * 1024
BOT_ID = "28:lore-bot"
BOT_NAME = "Lore"
TENANT_ID = "72f988bf-0000-0000-0000-000000000001"
CARD_TYPE = "application/vnd.microsoft.card.adaptive"


# ---------------------------------------------------------------- the Bot Connector service


@dataclass(frozen=True)
class SentActivity:
    """One activity the bot sent to the connector."""

    method: str  # POST (send/reply) or PUT (update)
    conversation_id: str
    reply_to_id: str | None  # from the URL: /activities/{activityId}
    id: str  # the id the connector gave it
    body: dict[str, Any]
    size: int  # bytes of the request body
    authorization: str | None

    @property
    def type(self) -> str:
        return self.body.get("type", "")

    @property
    def cards(self) -> list[dict[str, Any]]:
        """The Adaptive Cards attached to this activity."""
        return [a["content"] for a in self.body.get("attachments") or [] if a.get("contentType") == CARD_TYPE]

    @property
    def card_text(self) -> str:
        """Every TextBlock's text in the attached cards, in order, one per line."""
        return "\n".join(_text_blocks(card.get("body", [])) for card in self.cards)


class ConnectorMock:
    """The Bot Connector REST API on 127.0.0.1 (start with `async with`)."""

    def __init__(self) -> None:
        self.sent: list[SentActivity] = []
        self.rejected: list[SentActivity] = []  # over the size limit
        # Like a client or conversation without streaming: streaminfo updates get 403.
        self.refuse_streaming = False
        # The roster (`GET .../members/{id}`), by Teams user id; others are 404 (not a member).
        self.members: dict[str, dict[str, Any]] = {}
        self.member_lookups: list[str] = []  # Teams user ids the bot asked the roster about
        # Unique across mocks, as Teams' ids are: tests share one answer database.
        self._ids = _bot_activity_ids
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def __aenter__(self) -> ConnectorMock:
        app = web.Application(client_max_size=4 * 1024 * 1024)
        base = "/v3/conversations/{conversation_id}/activities"
        app.router.add_post(base, self._record)
        app.router.add_post(base + "/{activity_id}", self._record)
        app.router.add_put(base + "/{activity_id}", self._record)
        app.router.add_get("/v3/conversations/{conversation_id}/members/{member_id}", self._member)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}/"
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def add_member(self, user: TeamsUser) -> None:
        """Put `user` on the roster, so the bot can look up their e-mail."""
        self.members[user.id] = user.member()

    async def _member(self, request: web.Request) -> web.Response:
        self.member_lookups.append(request.match_info["member_id"])
        member = self.members.get(request.match_info["member_id"])
        if member is None:
            return web.json_response(
                {"error": {"code": "MemberNotFoundInConversation", "message": "Not a member"}},
                status=404,
            )
        return web.json_response(member)

    async def _record(self, request: web.Request) -> web.Response:
        raw = await request.read()
        activity_id = f"bot-activity-{next(self._ids)}"
        sent = SentActivity(
            method=request.method,
            conversation_id=request.match_info["conversation_id"],
            reply_to_id=request.match_info.get("activity_id") if request.method == "POST" else None,
            id=(request.match_info.get("activity_id", activity_id) if request.method == "PUT" else activity_id),
            body=json.loads(raw),
            size=len(raw),
            authorization=request.headers.get("Authorization"),
        )
        if self.refuse_streaming and any(e.get("type") == "streaminfo" for e in sent.body.get("entities") or []):
            return web.json_response(
                {"error": {"code": "ContentStreamNotAllowed", "message": "Streaming not allowed"}},
                status=403,
            )
        async with self._changed:
            if sent.size > TEAMS_MESSAGE_LIMIT_BYTES:
                self.rejected.append(sent)
                self._changed.notify_all()
                return web.json_response(
                    {"error": {"code": "MessageSizeTooBig", "message": "Message size too big"}},
                    status=413,
                )
            self.sent.append(sent)
            self._changed.notify_all()
        return web.json_response({"id": sent.id})

    async def wait_for(
        self, predicate: Callable[[list[SentActivity]], bool], timeout: float = 60.0
    ) -> list[SentActivity]:
        """Wait until `predicate(self.sent)` holds; return everything sent so far."""
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: predicate(self.sent)), timeout)
            return list(self.sent)

    def messages(self, conversation_id: str | None = None) -> list[SentActivity]:
        """Sent message activities (not typing), optionally in one conversation."""
        return [
            s
            for s in self.sent
            if s.type == "message" and (conversation_id is None or s.conversation_id == conversation_id)
        ]


# ---------------------------------------------------------------- tokens


class TokenIssuer:
    """Signs Bot Framework tokens and publishes the key as botbuilder expects to find it:
    an OpenID metadata document whose `jwks_uri` lists the key with its endorsements."""

    ISSUER = "https://api.botframework.com"

    def __init__(self, endorsements: tuple[str, ...] = ("msteams",)) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = uuid.uuid4().hex
        self.endorsements = endorsements
        self.metadata_url = ""
        self.requests = 0
        self._server: ThreadingHTTPServer | None = None

    def __enter__(self) -> TokenIssuer:
        jwk = json.loads(RSAAlgorithm.to_jwk(self.key.public_key()))
        jwk.update(kid=self.kid, use="sig", endorsements=list(self.endorsements))
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # http.server's name
                issuer.requests += 1
                base = f"http://127.0.0.1:{self.server.server_address[1]}"
                documents = {
                    "/v1/.well-known/openidconfiguration": {
                        "issuer": TokenIssuer.ISSUER,
                        "jwks_uri": f"{base}/v1/.well-known/keys",
                        "id_token_signing_alg_values_supported": ["RS256"],
                    },
                    "/v1/.well-known/keys": {"keys": [jwk]},
                }
                document = documents.get(self.path)
                payload = json.dumps(document or {"error": "not found"}).encode()
                self.send_response(200 if document else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        port = self._server.server_address[1]
        # A unique URL per issuer: botbuilder caches metadata per URL for the whole process.
        self.metadata_url = f"http://127.0.0.1:{port}/v1/.well-known/openidconfiguration"
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def token(
        self,
        app_id: str,
        service_url: str,
        *,
        issuer: str = ISSUER,
        lifetime: int = 3600,
        key: rsa.RSAPrivateKey | None = None,
    ) -> str:
        """A channel-to-bot token as the Bot Framework signs them (audience = the bot's app id)."""
        now = int(time.time())
        claims = {
            "iss": issuer,
            "aud": app_id,
            "serviceurl": service_url,
            "nbf": now - 5,
            "iat": now - 5,
            "exp": now + lifetime,
        }
        return jwt.encode(claims, key or self.key, algorithm="RS256", headers={"kid": self.kid})


# ---------------------------------------------------------------- activities Teams sends

Scope = Literal["personal", "groupChat", "channel"]


@dataclass(frozen=True)
class TeamsUser:
    id: str = "29:user-alice"
    name: str = "Alice Example"
    aad_object_id: str = "aad-alice"
    email: str | None = None  # None: <first name>@example.com

    def account(self) -> dict[str, str]:
        return {"id": self.id, "name": self.name, "aadObjectId": self.aad_object_id}

    def member(self) -> dict[str, str]:
        """The user as the roster (`TeamsChannelAccount`) shows them."""
        email = self.email or f"{self.name.split()[0].lower()}@example.com"
        return {
            **self.account(),
            "email": email,
            "userPrincipalName": email,
            "tenantId": TENANT_ID,
        }


@dataclass(frozen=True)
class TeamsConversation:
    """A personal chat, a group chat, or a channel reply chain (`root` = the chain's first post)."""

    id: str = "a:personal-chat-alice"
    scope: Scope = "personal"
    root: str | None = None

    @property
    def wire_id(self) -> str:
        """The conversation id Teams puts on activities (channel chains carry `;messageid=`)."""
        return f"{self.id};messageid={self.root}" if self.root else self.id

    def account(self) -> dict[str, Any]:
        account: dict[str, Any] = {
            "id": self.wire_id,
            "conversationType": self.scope,
            "tenantId": TENANT_ID,
        }
        if self.scope != "personal":
            account["isGroup"] = True
        return account


_activity_ids = itertools.count(1000)
_bot_activity_ids = itertools.count(1)


def _base(kind: str, user: TeamsUser, conversation: TeamsConversation, service_url: str) -> dict[str, Any]:
    return {
        "type": kind,
        "id": f"{int(time.time() * 1000)}{next(_activity_ids)}",
        "timestamp": "2026-11-29T10:00:00.000Z",
        "serviceUrl": service_url,
        "channelId": "msteams",
        "from": user.account(),
        "conversation": conversation.account(),
        "recipient": {"id": BOT_ID, "name": BOT_NAME},
        "channelData": {"tenant": {"id": TENANT_ID}},
        "locale": "en-US",
    }


def message_activity(
    text: str,
    *,
    service_url: str,
    user: TeamsUser = TeamsUser(),
    conversation: TeamsConversation = TeamsConversation(),
    mention_bot: bool = False,
) -> dict[str, Any]:
    """A message as Teams posts it; with `mention_bot` the text starts with `<at>Lore</at>` and
    carries the mention entity Teams adds."""
    activity = _base("message", user, conversation, service_url)
    entities: list[dict[str, Any]] = [{"type": "clientInfo", "locale": "en-US", "platform": "Web"}]
    if mention_bot:
        mention = f"<at>{BOT_NAME}</at>"
        text = f"{mention} {text}"
        entities.append({"type": "mention", "text": mention, "mentioned": {"id": BOT_ID, "name": BOT_NAME}})
    activity.update(text=text, textFormat="plain", entities=entities)
    return activity


def card_submit_activity(
    value: dict[str, Any],
    *,
    service_url: str,
    reply_to_id: str,
    user: TeamsUser = TeamsUser(),
    conversation: TeamsConversation = TeamsConversation(),
) -> dict[str, Any]:
    """What an Action.Submit on a card sends: a message with `value` and no text."""
    activity = _base("message", user, conversation, service_url)
    activity.update(value=value, replyToId=reply_to_id)
    return activity


def submit_action_activity(
    reaction: Literal["like", "dislike"],
    *,
    service_url: str,
    reply_to_id: str,
    feedback_text: str = "",
    user: TeamsUser = TeamsUser(),
    conversation: TeamsConversation = TeamsConversation(),
) -> dict[str, Any]:
    """Teams' built-in feedback buttons: a `message/submitAction` invoke."""
    activity = _base("invoke", user, conversation, service_url)
    activity.update(
        name="message/submitAction",
        replyToId=reply_to_id,
        value={
            "actionName": "feedback",
            "actionValue": {
                "reaction": reaction,
                "feedback": json.dumps({"feedbackText": feedback_text}),
            },
        },
    )
    return activity


def bot_added_activity(
    *,
    service_url: str,
    conversation: TeamsConversation = TeamsConversation(),
    user: TeamsUser = TeamsUser(),
) -> dict[str, Any]:
    """The conversationUpdate Teams sends when the app is installed in a chat or team."""
    activity = _base("conversationUpdate", user, conversation, service_url)
    activity["membersAdded"] = [{"id": BOT_ID}]
    return activity


# ---------------------------------------------------------------- scripted conversations


@dataclass
class TeamsTurn:
    """What the bot sent back for one user message."""

    activities: list[SentActivity] = field(default_factory=list)

    @property
    def answer_messages(self) -> list[SentActivity]:
        return [a for a in self.activities if a.type == "message"]

    @property
    def final(self) -> SentActivity:
        return self.answer_messages[-1]

    @property
    def answer_id(self) -> str | None:
        """The answer id the final card's feedback buttons carry (None for a plain reply)."""
        for card in self.final.cards:
            for action in card.get("actions", []):
                if action.get("type") == "Action.Submit":
                    return action["data"].get("answerId")
        return None

    @property
    def source_lines(self) -> list[str]:
        """The lines under "Sources" in the final card, e.g. `[1] [Title — Heading](url)`."""
        lines = self.final.card_text.split("\n")
        return lines[lines.index("**Sources**") + 1 :] if "**Sources**" in lines else []


async def teams_test_client(services: Any, **route_options: Any) -> TestClient:
    """`lore serve`'s web app (`create_web_app`) with the Teams routes, started on loopback
    in local mode unless `route_options` say otherwise. Close it with `await client.close()`,
    which finishes the answers in flight."""
    from bot.platforms.teams.routes import teams_routes
    from bot.server import create_web_app

    return await serve(create_web_app(services, [teams_routes(services, **route_options)]))


async def serve(app: web.Application) -> TestClient:
    """Start `app` on loopback; close with `await client.close()`."""
    client = TestClient(TestServer(app))
    await client.start_server()
    return client


async def post_activity(client: TestClient, activity: dict[str, Any], *, token: str | None = None) -> tuple[int, str]:
    """POST an activity to /api/messages as the Bot Framework does; returns (status, body)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = await client.post("/api/messages", json=activity, headers=headers)
    return response.status, await response.text()


async def ask_via_teams(
    client: TestClient,
    connector: ConnectorMock,
    text: str,
    user: TeamsUser = TeamsUser(),
    conversation: TeamsConversation = TeamsConversation(),
    *,
    timeout: float = 120.0,
) -> TeamsTurn:
    """Send one question (with an @mention outside personal chats) and wait for the message
    that ends the reply: the one with Teams' feedback loop enabled, or an apology."""
    connector.add_member(user)
    activity = message_activity(
        text,
        service_url=connector.url,
        user=user,
        conversation=conversation,
        mention_bot=conversation.scope != "personal",
    )
    before = len(connector.sent)
    status, body = await post_activity(client, activity)
    assert status == 200, body

    def done(sent: list[SentActivity]) -> bool:
        return any(s.reply_to_id == activity["id"] and s.type == "message" and _ends_reply(s) for s in sent[before:])

    sent = await connector.wait_for(done, timeout)
    return TeamsTurn([s for s in sent[before:] if s.reply_to_id == activity["id"]])


def _ends_reply(sent: SentActivity) -> bool:
    channel_data = sent.body.get("channelData") or {}
    return bool(channel_data.get("feedbackLoopEnabled")) or not sent.cards


def _text_blocks(elements: list[dict[str, Any]]) -> str:
    lines = []
    for element in elements:
        if element.get("type") == "TextBlock":
            lines.append(element.get("text", ""))
        lines.extend(filter(None, [_text_blocks(element.get("items", []))]))
    return "\n".join(lines)
