"""Answers in Slack and Teams cite cloud documents (Google Drive and SharePoint, each on its
local server) with links that open them in the drive, and the drive's own sharing decides who
is answered from them: a document shared with Alice only reaches Alice, in a DM and a Teams
personal chat; Bob asking the same gets neither its words nor its link; a discoverable share
with the company's domain (Drive) or an organisation link (SharePoint, where the admin counts
those as everyone) reaches everyone."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from bot.app import Services, build_services
from bot.platforms.slack.routes import slack_routes
from bot.server import create_web_app
from bot.settings import LoreSettings, ModelSettings, SlackSettings
from knowledge.config import SharePointSourceSettings, SourceSettings
from tests.cloud.gdrive_harness import drive_server
from tests.cloud.graph_server import CLIENT_ID, CLIENT_SECRET, TENANT, graph_server, link_grant, user_grant
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


PRIVATE_TEXT = f"# Personal archive\n\nThe vault code word of the personal archive is {PRIVATE_PHRASE}.\n"
PUBLIC_TEXT = f"# Public archive\n\nThe vault code word of the public archive is {PUBLIC_PHRASE}.\n"


def indexed(tmp: Path, source: SourceSettings) -> Services:
    settings = LoreSettings(
        home=tmp / "home",
        sources=[source],
        model=ModelSettings(max_new_tokens=4, base_model=build_tiny_model(tmp / "tiny-model")),
    )
    services = build_services(settings)
    try:
        report = services.knowledge.refresh()
    except BaseException:
        services.close()
        raise
    assert report.added == 2 and not report.failed, report
    return services


def links_of(services: Services, private: str, public: str) -> tuple[str, str]:
    links = {record.path: record.url for record in services.knowledge.documents()}
    return links[private], links[public]


@contextmanager
def google_drive(tmp: Path) -> Iterator[CloudStack]:
    with drive_server(tmp) as drive:
        drive.state.add_drive("0Avault", "Vault", [])  # no members: each file's sharing decides
        private = drive.state.add(
            "archive.md", "0Avault", PRIVATE_TEXT.encode(), permissions=[{"type": "user", "emailAddress": ALICE}]
        )
        public = drive.state.add(
            "public-archive.md",
            "0Avault",
            PUBLIC_TEXT.encode(),
            permissions=[{"type": "domain", "domain": "example.com", "role": "reader", "allowFileDiscovery": True}],
        )
        services = indexed(tmp, drive.settings(drives=["0Avault"], everyone_domains=["example.com"]))
        try:
            private_link, public_link = links_of(services, "Vault/archive.md", "Vault/public-archive.md")
            assert private.id in private_link and public.id in public_link
            assert private_link.startswith("https://drive.google.com/")
            yield CloudStack(services, private_link, public_link)
        finally:
            services.close()


@contextmanager
def sharepoint(tmp: Path) -> Iterator[CloudStack]:
    with graph_server(tmp) as (graph, ca), pytest.MonkeyPatch.context() as patch:
        patch.setenv("SSL_CERT_FILE", str(ca))  # the local Graph's certificate, as a corporate CA
        drive = graph.add_drive("Documents")
        graph.add(drive, "archive.md", PRIVATE_TEXT.encode(), grants=[user_grant(ALICE)], inherits=False)
        graph.add(drive, "public-archive.md", PUBLIC_TEXT.encode(), grants=[link_grant("organization")], inherits=False)
        source = SharePointSourceSettings(
            kind="sharepoint",
            name="team-files",
            tenant_id=TENANT,
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            drives=[drive.id],
            graph_url=f"{graph.base}/v1.0",
            authority_url=graph.base,
            organisation_links_grant_everyone=True,
        )
        services = indexed(tmp, source)
        try:
            private_link, public_link = links_of(services, "Documents/archive.md", "Documents/public-archive.md")
            assert private_link != public_link and private_link.startswith("https://contoso.sharepoint.com/")
            yield CloudStack(services, private_link, public_link)
        finally:
            services.close()


@pytest.fixture(scope="module", params=["gdrive", "sharepoint"])
def cloud(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[CloudStack]:
    serve = google_drive if request.param == "gdrive" else sharepoint
    with serve(tmp_path_factory.mktemp(f"cloud-answers-{request.param}")) as stack:
        yield stack


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
