"""Answers in Slack and Teams cite cloud documents with links that open them in the drive,
and the drive's own sharing decides who is answered from them: a document shared with Alice
only reaches Alice, in a DM and a Teams personal chat; Bob asking the same gets neither its
words nor its link; a discoverable share with the company's domain reaches everyone."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import web

from bot.app import Services, build_services
from bot.platforms.slack.routes import slack_routes
from bot.server import create_web_app
from bot.settings import LoreSettings, ModelSettings, SlackSettings
from tests.cloud.gdrive_harness import drive_server
from tests.support.bot_connector import ConnectorMock, TeamsConversation, TeamsUser, ask_via_teams, teams_test_client
from tests.support.slack_api import BOT_TOKEN, SIGNING_SECRET, MockSlackApi, SlackSender, message
from tests.support.tiny_model import build_tiny_model

QUESTION = "What is the vault code word of the archive?"
PRIVATE_PHRASE, PUBLIC_PHRASE = "SCARLETHERON", "AMBERFALCON"
ALICE, BOB = "ualice@example.com", "ubob@example.com"  # the Slack mock's users.info e-mails


@dataclass(frozen=True)
class CloudStack:
    services: Services
    private_link: str  # the webViewLink of Alice's document
    public_link: str


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CloudStack]:
    tmp = tmp_path_factory.mktemp("cloud-answers")
    with drive_server(tmp) as drive:
        drive.state.add_drive("0Avault", "Vault", [])  # no members: each file's sharing decides
        private = drive.state.add(
            "archive.md",
            "0Avault",
            f"# Personal archive\n\nThe vault code word of the personal archive is {PRIVATE_PHRASE}.\n".encode(),
            permissions=[{"type": "user", "emailAddress": ALICE, "role": "reader"}],
        )
        public = drive.state.add(
            "public-archive.md",
            "0Avault",
            f"# Public archive\n\nThe vault code word of the public archive is {PUBLIC_PHRASE}.\n".encode(),
            permissions=[{"type": "domain", "domain": "example.com", "role": "reader", "allowFileDiscovery": True}],
        )
        settings = LoreSettings(
            home=tmp / "home",
            sources=[drive.settings(drives=["0Avault"], everyone_domains=["example.com"])],
            model=ModelSettings(max_new_tokens=4, base_model=build_tiny_model(tmp / "tiny-model")),
        )
        services = build_services(settings)
        try:
            report = services.knowledge.refresh()
            assert report.added == 2, report
            links = {record.path: record.url for record in services.knowledge.documents()}
            yield CloudStack(services, links["Vault/archive.md"], links["Vault/public-archive.md"])
        finally:
            services.close()
    assert private.id in links["Vault/archive.md"] and public.id in links["Vault/public-archive.md"]


@pytest.fixture
async def slack(cloud: CloudStack) -> AsyncIterator[tuple[MockSlackApi, SlackSender]]:
    api = await MockSlackApi().start()
    slack_settings = SlackSettings(bot_token=BOT_TOKEN, signing_secret=SIGNING_SECRET, api_url=api.base_url)
    services = dataclasses.replace(
        cloud.services, settings=cloud.services.settings.model_copy(update={"slack": slack_settings})
    )
    runner = web.AppRunner(create_web_app(services, [slack_routes(services, 0.2)]), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    sender = SlackSender(f"http://127.0.0.1:{runner.addresses[0][1]}/slack/events", api)
    yield api, sender
    await sender.close()
    await runner.cleanup()
    await api.stop()


async def slack_dm_answer(api: MockSlackApi, sender: SlackSender, user: str) -> str:
    channel = f"D0CLOUD{user}"
    assert (await sender.event(message(QUESTION, user, channel, "im"))).status == 200

    def finished() -> list[Any]:
        return [m for m in api.thread(channel, None) if any("actions" == b.get("type") for b in m.blocks)]

    await api.wait_until(lambda: finished() or None, 120.0)
    return "\n".join(m.text + json.dumps(m.blocks) for m in api.messages.values() if m.channel == channel)


@pytest.mark.parametrize(("user", "sees_private"), [("UALICE", True), ("UBOB", False)], ids=["alice", "bob"])
async def test_slack_cites_drive_documents_with_their_drive_links_by_the_drives_sharing(
    cloud: CloudStack, slack: tuple[MockSlackApi, SlackSender], user: str, sees_private: bool
) -> None:
    api, sender = slack

    shown = await slack_dm_answer(api, sender, user)

    assert (PRIVATE_PHRASE in shown) == sees_private
    assert (cloud.private_link in shown) == sees_private
    assert PUBLIC_PHRASE in shown and cloud.public_link in shown


@pytest.mark.parametrize(("email", "sees_private"), [(ALICE, True), (BOB, False)], ids=["alice", "bob"])
async def test_teams_cites_drive_documents_with_their_drive_links_by_the_drives_sharing(
    cloud: CloudStack, email: str, sees_private: bool
) -> None:
    user = TeamsUser(id=f"29:{email}", name=email, aad_object_id=f"aad-{email}", email=email)
    async with ConnectorMock() as connector:
        client = await teams_test_client(cloud.services)
        try:
            turn = await ask_via_teams(client, connector, QUESTION, user, TeamsConversation(id=f"a:personal-{email}"))
        finally:
            await client.close()

    shown = "\n".join(json.dumps(activity.body) for activity in turn.answer_messages)
    assert (PRIVATE_PHRASE in shown) == sees_private
    assert (cloud.private_link in shown) == sees_private
    assert PUBLIC_PHRASE in shown and cloud.public_link in shown
