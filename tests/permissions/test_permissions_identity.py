"""Who is asking: directory file, principals of an asker, Slack and Teams e-mail look-ups
(over real HTTP on loopback)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from botbuilder.core import BotAdapter, TurnContext
from botbuilder.core.adapters import TestAdapter
from botbuilder.schema import Activity, ChannelAccount, ConversationAccount
from botframework.connector.aio import ConnectorClient
from botframework.connector.auth import MicrosoftAppCredentials
from slack_sdk.web.async_client import AsyncWebClient

from bot.errors import ConfigurationError
from bot.identity import DirectoryFile, PrincipalsResolver, parse_directory
from bot.identity.cache import TtlCache
from bot.platforms.slack.users import SlackEmails
from bot.platforms.teams.users import TeamsEmails, teams_email
from bot.types import Asker

DIRECTORY = """
users:
  Alice@Example.com: [hr, Engineering]
  bob@example.com: [engineering]
  carol@example.com: []
groups:
  board: [ceo@example.com, alice@example.com]
accounts:
  U0ALICE: alice@example.com
  8f0c5d2e-0000-aad: bob@example.com
"""


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def directory(tmp_path: Path) -> DirectoryFile:
    path = tmp_path / "directory.yaml"
    path.write_text(DIRECTORY)
    return DirectoryFile(path)


def test_directory_file(directory: DirectoryFile) -> None:
    assert directory.groups_of("alice@example.com") == {"hr", "engineering", "board"}
    assert directory.groups_of(" ALICE@example.com ") == {"hr", "engineering", "board"}
    assert directory.groups_of("ceo@example.com") == {"board"}
    assert directory.groups_of("carol@example.com") == frozenset()
    assert directory.groups_of("nobody@example.com") == frozenset()
    assert directory.email_of("U0ALICE") == "alice@example.com"
    assert directory.email_of("U0UNKNOWN") is None


def test_directory_file_is_reread_when_it_changes(directory: DirectoryFile) -> None:
    replacement = directory.path.with_suffix(".new")
    replacement.write_text("users: {alice@example.com: [engineering]}\n")
    replacement.replace(directory.path)
    assert directory.groups_of("alice@example.com") == {"engineering"}
    directory.path.unlink()
    with pytest.raises(ConfigurationError, match="does not exist.*LORE_DIRECTORY_FILE"):
        directory.groups_of("alice@example.com")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("users: [alice]", "users must be a mapping"),
        ("users: {alice: [hr]}", "'alice' is not an e-mail address"),
        ("users: {a@b.c: [[hr]]}", "must be a list of names"),
        ("groups: {hr: [bob]}", "'bob' is not an e-mail address"),
        ("members: {}", "unknown key(s) members"),
        ("users: {a: [\n", "is not valid YAML"),
    ],
)
def test_bad_directory_files_are_refused(text: str, message: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        parse_directory(text, "dir.yaml")
    assert "Directory file dir.yaml" in str(raised.value) and message in str(raised.value)


def test_principals_of_askers(directory: DirectoryFile) -> None:
    resolve = PrincipalsResolver(directory)
    alice = resolve(Asker(user_id="U1", email="ALICE@example.com"))
    assert alice == {"everyone", "user:alice@example.com", "group:hr", "group:engineering", "group:board"}
    # Known by chat account only: the directory supplies the e-mail.
    assert resolve(Asker(user_id="8f0c5d2e-0000-aad")) == {"everyone", "user:bob@example.com", "group:engineering"}
    # Unknown people hold only everyone.
    assert resolve(Asker(user_id="U0STRANGER")) == {"everyone"}
    assert resolve(Asker(user_id="U0X", email="not-an-address")) == {"everyone"}
    # Known address, not in the directory: themselves and everyone.
    assert resolve(Asker(user_id="U2", email="dave@example.com")) == {"everyone", "user:dave@example.com"}
    # Groups the adapter asserted are added; without a directory only they count.
    assert PrincipalsResolver()(Asker(user_id="U3", email="e@x.org", groups=("Sales",))) == {
        "everyone",
        "user:e@x.org",
        "group:sales",
    }


def test_ttl_cache_expires_and_stays_bounded() -> None:
    clock = Clock()
    cache: TtlCache[str | None] = TtlCache(ttl_seconds=10, max_entries=2, clock=clock)
    cache.put("a", "1")
    cache.put("b", None)
    assert cache.get("a") == (True, "1") and cache.get("b") == (True, None)
    cache.put("c", "3")  # evicts the oldest
    assert cache.get("a") == (False, None)
    clock.now += 10
    assert cache.get("b") == (False, None) and cache.get("c") == (False, None)


# -- Slack: users.info on a loopback server -------------------------------------------------

SLACK_USERS = {
    "U0ALICE": {"id": "U0ALICE", "profile": {"email": "Alice@Example.com"}},
    "U0NOMAIL": {"id": "U0NOMAIL", "profile": {}},
    "U0BOT": {"id": "U0BOT", "is_bot": True, "profile": {"email": "bot@example.com"}},
}


@pytest.fixture
async def slack_api() -> AsyncIterator[tuple[TestServer, list[str]]]:
    calls: list[str] = []

    async def users_info(request: web.Request) -> web.Response:
        user = request.query.get("user", "")
        calls.append(user)
        if request.headers.get("Authorization") != "Bearer xoxb-test":
            return web.json_response({"ok": False, "error": "invalid_auth"})
        if user == "U0BROKEN":
            return web.Response(status=500, text="<html>upstream error</html>")
        if user == "U0NOSCOPE":
            return web.json_response({"ok": False, "error": "missing_scope", "needed": "users:read.email"})
        if user not in SLACK_USERS:
            return web.json_response({"ok": False, "error": "user_not_found"})
        return web.json_response({"ok": True, "user": SLACK_USERS[user]})

    app = web.Application()
    app.router.add_get("/api/users.info", users_info)  # slack_sdk sends users.info as GET
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield server, calls
    await server.close()


async def test_slack_user_email_is_looked_up_once_per_ttl(slack_api: tuple[TestServer, list[str]]) -> None:
    server, calls = slack_api
    clock = Clock()
    client = AsyncWebClient(token="xoxb-test", base_url=str(server.make_url("/api/")))
    emails = SlackEmails(client, TtlCache(ttl_seconds=600, clock=clock))
    assert await emails.email_of("U0ALICE") == "alice@example.com"
    assert await emails.email_of("U0ALICE") == "alice@example.com"
    assert calls == ["U0ALICE"]
    clock.now += 601
    assert await emails.email_of("U0ALICE") == "alice@example.com"
    assert calls == ["U0ALICE", "U0ALICE"]
    assert await emails.email_of("U0NOMAIL") is None
    assert await emails.email_of("U0BOT") is None
    assert await emails.email_of("U0GONE") is None
    assert await emails.email_of("U0BROKEN") is None  # not even JSON: still just unknown
    assert await emails.email_of("U0NOSCOPE") is None
    assert await emails.email_of("U0NOSCOPE") is None  # a failure is remembered for a while
    assert calls.count("U0NOSCOPE") == 1
    wrong_token = AsyncWebClient(token="xoxb-stolen", base_url=str(server.make_url("/api/")))
    assert await SlackEmails(wrong_token).email_of("U0ALICE") is None


async def test_slack_unreachable_means_unknown() -> None:
    client = AsyncWebClient(token="xoxb-test", base_url="http://127.0.0.1:9/api/", timeout=2)
    assert await SlackEmails(client).email_of("U0ALICE") is None


# -- Teams: the roster on a loopback Bot Connector ------------------------------------------

TEAMS_MEMBERS = {
    "29:alice": {
        "id": "29:alice",
        "aadObjectId": "aad-alice",
        "email": "Alice@Example.com",
        "userPrincipalName": "alice@corp.example.com",
    },
    "29:bob": {"id": "29:bob", "aadObjectId": "aad-bob", "userPrincipalName": "Bob@Example.com"},
    "29:guest": {"id": "29:guest", "aadObjectId": "aad-guest", "userPrincipalName": "guest#EXT"},
}


@pytest.fixture
async def connector() -> AsyncIterator[tuple[TestServer, list[str]]]:
    calls: list[str] = []

    async def member(request: web.Request) -> web.Response:
        member_id = request.match_info["member"]
        calls.append(member_id)
        if member_id not in TEAMS_MEMBERS:
            return web.json_response({"error": {"code": "MemberNotFound", "message": "no"}}, status=404)
        return web.json_response(TEAMS_MEMBERS[member_id])

    app = web.Application()
    app.router.add_get("/v3/conversations/{conversation}/members/{member}", member)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield server, calls
    await server.close()


def turn(server: TestServer, member_id: str, aad_id: str | None) -> TurnContext:
    service_url = str(server.make_url("/"))
    activity = Activity(
        type="message",
        text="hi",
        service_url=service_url,
        channel_id="msteams",
        from_property=ChannelAccount(id=member_id, aad_object_id=aad_id),
        conversation=ConversationAccount(id="a:personal-chat", conversation_type="personal"),
        channel_data={},
    )
    context = TurnContext(TestAdapter(), activity)
    context.turn_state[BotAdapter.BOT_CONNECTOR_CLIENT_KEY] = ConnectorClient(
        MicrosoftAppCredentials("", ""), base_url=service_url
    )
    return context


async def test_teams_sender_email_from_the_roster(connector: tuple[TestServer, list[str]]) -> None:
    server, calls = connector
    emails = TeamsEmails()
    assert await emails.email_of(turn(server, "29:alice", "aad-alice")) == "alice@example.com"
    assert await emails.email_of(turn(server, "29:alice", "aad-alice")) == "alice@example.com"
    assert calls == ["29:alice"]  # cached by AAD object id
    assert await emails.email_of(turn(server, "29:bob", "aad-bob")) == "bob@example.com"  # the UPN
    assert await emails.email_of(turn(server, "29:guest", "aad-guest")) is None
    assert await emails.email_of(turn(server, "29:gone", None)) is None


def test_teams_email_prefers_the_email_then_the_upn() -> None:
    class Account:
        def __init__(self, email: str | None, upn: str | None) -> None:
            self.email, self.user_principal_name = email, upn

    assert teams_email(Account("A@x.org", "b@x.org")) == "a@x.org"
    assert teams_email(Account(None, "B@x.org")) == "b@x.org"
    assert teams_email(Account("", "not-an-address")) is None


PINNED_DIRECTORY = """
users:
  alice@example.com: [hr]
aad_object_ids:
  AAD-REAL-ALICE: alice@example.com   # object ids compare without case
  aad-bob: carol@example.com
"""


async def test_a_teams_roster_email_pinned_to_another_aad_object_id_gives_no_access(
    connector: tuple[TestServer, list[str]], tmp_path: Path
) -> None:
    """Someone whose roster e-mail or UPN reads alice@example.com, from an object id that is
    not Alice's, is not Alice: identity rests on the object id where the directory pins it."""
    server, _ = connector
    (tmp_path / "directory.yaml").write_text(PINNED_DIRECTORY)
    emails = TeamsEmails(directory=DirectoryFile(tmp_path / "directory.yaml"))

    assert await emails.email_of(turn(server, "29:alice", "aad-alice")) is None
    assert await emails.email_of(turn(server, "29:alice", "aad-real-alice")) == "alice@example.com"


async def test_a_pinned_aad_object_id_is_its_person_whatever_the_roster_says(
    connector: tuple[TestServer, list[str]], tmp_path: Path
) -> None:
    server, calls = connector
    (tmp_path / "directory.yaml").write_text(PINNED_DIRECTORY)
    emails = TeamsEmails(directory=DirectoryFile(tmp_path / "directory.yaml"))

    assert await emails.email_of(turn(server, "29:bob", "aad-bob")) == "carol@example.com"
    assert calls == []  # the roster is not even asked
    # Not pinned (and its address is not): the roster decides, as before.
    assert await emails.email_of(turn(server, "29:guest", "aad-unpinned")) is None
    assert parse_directory("users: {a@x.org: [g]}").aad_object_ids == {}
