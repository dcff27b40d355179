"""Production mode: botbuilder's own JWT validation runs against a signing key published on
loopback (OpenID metadata + JWKS), so only correctly signed Bot Framework tokens get in."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator

import pytest
from aiohttp.test_utils import TestClient
from cryptography.hazmat.primitives.asymmetric import rsa

from bot.platforms.teams.auth import bot_framework_config
from bot.settings import TeamsSettings
from knowledge.errors import ConfigurationError
from tests.support.bot_connector import (
    ConnectorMock,
    TeamsConversation,
    TeamsUser,
    TokenIssuer,
    bot_added_activity,
    message_activity,
    post_activity,
    submit_action_activity,
    teams_test_client,
)

USER = TeamsUser("29:prod-user", "Pat", "aad-pat")
CHAT = TeamsConversation("a:dm-prod")


@pytest.fixture(scope="module")
def issuer() -> Iterator[TokenIssuer]:
    with TokenIssuer() as token_issuer:
        yield token_issuer


@pytest.fixture
async def production_client(
    production_services: object, issuer: TokenIssuer, connector: ConnectorMock
) -> AsyncIterator[TestClient]:
    client = await teams_test_client(production_services, openid_metadata_url=issuer.metadata_url)
    yield client
    await client.close()


def app_id(services: object) -> str:
    return services.settings.teams.app_id


def bad_tokens(issuer: TokenIssuer, app: str, service_url: str) -> dict[str, str | None]:
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return {
        "missing": None,
        "not a JWT": "garbage",
        "signed by another key": issuer.token(app, service_url, key=other_key),
        "expired": issuer.token(app, service_url, lifetime=-3600),
        "for another bot": issuer.token("11111111-2222-3333-4444-555555555555", service_url),
        "from another issuer": issuer.token(app, service_url, issuer="https://evil.example.com"),
        "for another serviceUrl": issuer.token(app, "https://smba.evil.example.com/"),
    }


async def test_requests_without_a_valid_token_get_401(
    production_client: TestClient,
    production_services: object,
    connector: ConnectorMock,
    issuer: TokenIssuer,
) -> None:
    activity = message_activity("What is the leave policy?", service_url=connector.url, user=USER, conversation=CHAT)
    for case, token in bad_tokens(issuer, app_id(production_services), connector.url).items():
        status, body = await post_activity(production_client, activity, token=token)
        assert status == 401, case
        assert "token" in body, case
    response = await production_client.post(
        "/api/messages", json=activity, headers={"Authorization": "Basic dXNlcjpwYXNz"}
    )
    assert response.status == 401
    assert production_services.agent.questions == []
    assert connector.sent == []


async def test_a_validly_signed_request_is_processed(
    production_client: TestClient,
    production_services: object,
    connector: ConnectorMock,
    issuer: TokenIssuer,
) -> None:
    token = issuer.token(app_id(production_services), connector.url)
    # Invokes and membership updates answer without calling back to the connector, which in
    # production mode needs an Azure AD token for the bot (not reachable offline).
    like = submit_action_activity("like", service_url=connector.url, reply_to_id="m-1", user=USER, conversation=CHAT)
    assert await post_activity(production_client, like, token=token) == (200, "")
    feedback = [f for f in production_services.feedback.list() if f.user_id == USER.aad_object_id]
    assert [(f.rating, f.platform) for f in feedback] == [("helpful", "teams")]

    joined = bot_added_activity(service_url=connector.url, conversation=CHAT, user=USER)
    joined["membersAdded"] = [{"id": "29:someone-else"}]
    assert (await post_activity(production_client, joined, token=token))[0] == 200
    assert issuer.requests >= 2  # botbuilder fetched the metadata and the keys from loopback


async def test_the_same_request_without_token_is_refused_after_a_valid_one(
    production_client: TestClient,
    production_services: object,
    connector: ConnectorMock,
    issuer: TokenIssuer,
) -> None:
    like = submit_action_activity("dislike", service_url=connector.url, reply_to_id="m-2", user=USER, conversation=CHAT)
    token = issuer.token(app_id(production_services), connector.url)
    assert (await post_activity(production_client, like, token=token))[0] == 200
    assert (await post_activity(production_client, like))[0] == 401
    ratings = [f.rating for f in production_services.feedback.list() if f.user_id == USER.aad_object_id]
    assert ratings.count("not_helpful") == 1


@pytest.mark.parametrize(
    ("teams", "message"),
    [
        ({"app_id": "0f8fad5b-d9cb-469f-a165-70867728950e"}, "MICROSOFT_APP_PASSWORD is empty"),
        (
            {
                "app_id": "0f8fad5b-d9cb-469f-a165-70867728950e",
                "app_password": "x",
                "app_type": "SingleTenant",
            },
            "needs MICROSOFT_APP_TENANT_ID",
        ),
        ({"app_type": "UserAssignedMSI"}, "needs MICROSOFT_APP_ID"),
    ],
)
def test_incomplete_settings_say_what_to_set(teams: dict, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        bot_framework_config(TeamsSettings(**teams))


def test_single_tenant_settings_reach_botbuilder() -> None:
    config = bot_framework_config(
        TeamsSettings(
            app_id="0f8fad5b-d9cb-469f-a165-70867728950e",
            app_password="x",
            app_type="SingleTenant",
            app_tenant_id="contoso.onmicrosoft.com",
        )
    )
    assert (config.APP_TYPE, config.APP_TENANTID, config.APP_PASSWORD) == (
        "SingleTenant",
        "contoso.onmicrosoft.com",
        "x",
    )
    assert config.TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL is None  # the public cloud's own


def deeply_nested(levels: int, service_url: str) -> bytes:
    """An activity whose channelData nests `levels` lists deep."""
    inner = "[" * levels + "]" * levels
    head = json.dumps(
        {
            "type": "message",
            "id": "deep-1",
            "serviceUrl": service_url,
            "channelId": "msteams",
            "from": {"id": "29:x"},
            "recipient": {"id": "28:lore-bot"},
            "conversation": {"id": "a:deep"},
        }
    )
    return (head[:-1] + f', "channelData": {inner}}}').encode()


async def test_an_unauthenticated_body_is_not_even_parsed(
    production_client: TestClient, production_services: object, connector: ConnectorMock
) -> None:
    """Without a valid token, whatever the body holds (garbage, nesting deep enough to
    exhaust a recursive parser) gets 401, never a 400 that says it was read or a 500."""
    for body in (b"{not json", deeply_nested(100_000, connector.url), deeply_nested(200, connector.url)):
        for headers in ({}, {"Authorization": "Bearer garbage"}):
            response = await production_client.post(
                "/api/messages", data=body, headers={"Content-Type": "application/json", **headers}
            )
            assert response.status == 401, (body[:40], headers)
    assert production_services.agent.questions == []


async def test_deeply_nested_json_from_an_authenticated_sender_is_a_400_not_a_500(
    production_client: TestClient,
    production_services: object,
    connector: ConnectorMock,
    issuer: TokenIssuer,
) -> None:
    token = issuer.token(app_id(production_services), connector.url)
    for levels in (100_000, 200):
        response = await production_client.post(
            "/api/messages",
            data=deeply_nested(levels, connector.url),
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
        )
        assert response.status == 400, levels
        assert "nested" in await response.text() or "not valid JSON" in await response.text()
