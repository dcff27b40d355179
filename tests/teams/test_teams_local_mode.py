"""Local (emulator) mode checks no tokens, so it must not become a way to impersonate anyone
or to make the bot fetch from and post to arbitrary addresses (#14, route 4): activities whose
serviceUrl is not on this machine are refused before the roster is fetched or anything is
posted."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.bot_connector import (
    ConnectorMock,
    TeamsConversation,
    TeamsUser,
    ask_via_teams,
    message_activity,
    post_activity,
)

QUESTION = "How many days of paid time off do employees get per year?"


@pytest.mark.parametrize(
    "service_url",
    [
        "https://smba.trafficmanager.net/teams/",  # Teams' own connector: only with tokens
        "http://169.254.169.254/latest/meta-data/",  # a cloud metadata service
        "http://127.0.0.1.nip.io:9/",  # a name that merely starts like loopback
        "http://[::ffff:10.0.0.1]:9/",
    ],
)
async def test_an_unauthenticated_activity_with_a_service_url_off_this_machine_is_refused(
    client: Any, services: Any, connector: ConnectorMock, service_url: str
) -> None:
    user = TeamsUser("29:impostor", "Imp Ostor", "aad-impostor")
    activity = message_activity(QUESTION, service_url=service_url, user=user)

    status, body = await post_activity(client, activity)

    assert status == 403 and "loopback" in body
    assert services.agent.questions == []


async def test_the_emulator_on_localhost_is_still_answered(client: Any, connector: ConnectorMock) -> None:
    connector.url = connector.url.replace("127.0.0.1", "localhost")

    turn = await ask_via_teams(client, connector, QUESTION, conversation=TeamsConversation("a:localhost"))

    assert turn.answer_id is not None
