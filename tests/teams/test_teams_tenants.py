"""Who counts as `everyone` on Teams (#14, route 3): users of other Azure AD tenants are
refused politely before their roster entry is fetched or anything is retrieved; a MultiTenant
bot that names no tenant does not start."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import SecretStr

from bot.platforms.teams.routes import teams_routes
from knowledge.errors import ConfigurationError
from tests.support.bot_connector import (
    TENANT_ID,
    ConnectorMock,
    TeamsConversation,
    TeamsUser,
    TokenIssuer,
    message_activity,
    post_activity,
    submit_action_activity,
    teams_test_client,
)

OTHER_TENANT = "0badc0de-0000-0000-0000-00000000beef"
QUESTION = "How many days of paid time off do employees get per year?"
REFUSAL = "only answer people in this company"
VISITOR = TeamsUser("29:visitor", "Vic Visitor", "aad-visitor")


def with_teams(services: Any, **teams: Any) -> Any:
    settings = services.settings.model_copy(update={"teams": services.settings.teams.model_copy(update=teams)})
    return dataclasses.replace(services, settings=settings)


def from_tenant(activity: dict[str, Any], channel_data: str | None, conversation: str | None) -> dict[str, Any]:
    activity["channelData"] = {"tenant": {"id": channel_data}} if channel_data else {}
    if conversation:
        activity["conversation"]["tenantId"] = conversation
    else:
        activity["conversation"].pop("tenantId", None)
    return activity


@pytest.fixture(scope="module")
def issuer() -> Iterator[TokenIssuer]:
    with TokenIssuer() as token_issuer:
        yield token_issuer


@pytest.mark.parametrize(
    ("channel_data", "conversation"),
    [(OTHER_TENANT, OTHER_TENANT), (TENANT_ID, OTHER_TENANT), (OTHER_TENANT, None), (None, None)],
    ids=["other tenant", "two tenants named", "other tenant in channelData only", "no tenant"],
)
async def test_a_user_of_another_tenant_gets_a_polite_refusal_and_no_retrieval(
    services: Any, connector: ConnectorMock, channel_data: str | None, conversation: str | None
) -> None:
    client = await teams_test_client(with_teams(services, allowed_tenant_ids=[TENANT_ID]))
    connector.add_member(VISITOR)
    chat = TeamsConversation(f"a:visitor-{channel_data}-{conversation}")
    activity = from_tenant(
        message_activity(QUESTION, service_url=connector.url, user=VISITOR, conversation=chat),
        channel_data,
        conversation,
    )
    try:
        assert (await post_activity(client, activity))[0] == 200
        sent = await connector.wait_for(lambda sent: any(s.type == "message" for s in sent))
    finally:
        await client.close()

    assert [REFUSAL in s.body.get("text", "") for s in sent if s.type == "message"] == [True]
    assert services.agent.questions == []
    assert connector.member_lookups == []


async def test_a_signed_feedback_invoke_from_another_tenant_gets_403_and_records_nothing(
    services: Any, connector: ConnectorMock, issuer: TokenIssuer
) -> None:
    """Production mode, the app's own tenant (MICROSOFT_APP_TENANT_ID) being the default."""
    production = with_teams(
        services,
        app_id="0f8fad5b-d9cb-469f-a165-70867728950e",
        app_password=SecretStr("s3cret"),
        app_tenant_id=TENANT_ID,
    )
    client = await teams_test_client(production, openid_metadata_url=issuer.metadata_url)
    token = issuer.token(production.settings.teams.app_id, connector.url)
    chat = TeamsConversation("a:visitor-feedback")

    def like(tenant: str) -> dict[str, Any]:
        activity = submit_action_activity(
            "like", service_url=connector.url, reply_to_id=f"m-{tenant}", user=VISITOR, conversation=chat
        )
        return from_tenant(activity, tenant, tenant)

    try:
        refused = await post_activity(client, like(OTHER_TENANT), token=token)
        accepted = await post_activity(client, like(TENANT_ID), token=token)
    finally:
        await client.close()

    assert refused[0] == 403
    assert accepted[0] == 200
    ratings = [f for f in production.feedback.list() if f.user_id == VISITOR.aad_object_id]
    assert len(ratings) == 1


def test_a_multitenant_bot_that_names_no_tenant_does_not_start(services: Any) -> None:
    open_to_all = with_teams(services, app_id="0f8fad5b-d9cb-469f-a165-70867728950e", app_password=SecretStr("s3cret"))
    with pytest.raises(ConfigurationError, match="allowed_tenant_ids"):
        teams_routes(open_to_all)
