"""Fixtures for the Teams tests: the real services (index over sample docs, tiny model, SQLite)
behind `/api/messages` on a loopback HTTP server, and the Bot Connector mock it replies to."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Iterator

import pytest
from aiohttp.test_utils import TestClient
from pydantic import SecretStr

from tests.support.bot_connector import TENANT_ID, ConnectorMock, teams_test_client
from tests.support.recording_agent import RecordingAgent
from tests.support.stack import build_test_services


@pytest.fixture(scope="session")
def base_services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """Built once (indexing takes a while); tests keep apart by conversation and user ids."""
    services = build_test_services(tmp_path_factory.mktemp("teams-stack"))
    yield services
    services.close()


@pytest.fixture
def services(base_services: object) -> object:
    """The shared services with a fresh `RecordingAgent` around the real agent."""
    return dataclasses.replace(base_services, agent=RecordingAgent(base_services.agent))


@pytest.fixture
async def connector() -> AsyncIterator[ConnectorMock]:
    async with ConnectorMock() as mock:
        yield mock
    assert mock.rejected == [], "the bot sent an activity over Teams' size limit"


@pytest.fixture
async def client(services: object, connector: ConnectorMock) -> AsyncIterator[TestClient]:
    """`lore serve`'s web app with the Teams routes, in local (no auth) mode. (Stopped before
    the connector mock, so no reply is cut off.)"""
    client = await teams_test_client(services)
    yield client
    await client.close()  # runs on_shutdown: answers in flight finish first


@pytest.fixture
def production_services(services: object) -> object:
    """The services with a Bot Framework app id and password set (production mode)."""
    teams = services.settings.teams.model_copy(
        update={
            "app_id": "0f8fad5b-d9cb-469f-a165-70867728950e",
            "app_password": SecretStr("s3cret"),
            # A MultiTenant bot answers only the tenants it is told (#14, route 3).
            "allowed_tenant_ids": [TENANT_ID],
        }
    )
    settings = services.settings.model_copy(update={"teams": teams})
    return dataclasses.replace(services, settings=settings)
