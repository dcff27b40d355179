"""Leakage tests: nobody is shown, cited or told the contents of a document they may not read.

A share holds a public document, a group-only one (`hr`) and a personal one (Carol's), each
with a unique secret phrase. Every asker asks in every kind of place on Slack, Teams and the
CLI; the reply as the platform shows it, its citations and the passages the answer log keeps
must hold exactly the phrases that person may read there. The tiny random model's text fails
the grounding check, so replies are the quoted evidence: a readable document's phrase shows.

One stack (index, model, database) serves the module; the Slack and Teams servers are started
per test on loopback, in front of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import re
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from click.testing import CliRunner

from bot.app import Services
from bot.cli.main import cli
from bot.conversation.memory import answer_and_remember
from bot.core.agent import Agent
from bot.model.base import ChatMessage, GenerationSettings
from bot.platforms.slack.rendering import ACTION_HELPFUL, ACTION_SHARE
from bot.platforms.slack.routes import slack_routes
from bot.server import create_web_app
from bot.settings import SlackSettings
from bot.store.answers import AnswerLog, StoredAnswer
from bot.store.database import Database
from bot.store.feedback import Feedback, FeedbackStore
from bot.types import Asker, Question
from tests.slack.slack_doubles import WrappedModel
from tests.support.bot_connector import (
    TENANT_ID,
    ConnectorMock,
    TeamsConversation,
    TeamsTurn,
    TeamsUser,
    ask_via_teams,
    message_activity,
    post_activity,
    teams_test_client,
)
from tests.support.slack_api import (
    BOT_TOKEN,
    SIGNING_SECRET,
    Message,
    MockSlackApi,
    SlackSender,
    mention,
    message,
)
from tests.support.stack import build_test_services
from tests.support.tiny_model import build_tiny_model

QUESTION = "What is the vault code word of the archive?"
# The tiny model's text is replaced by the quotes anyway: a few tokens keep the tests quick.
MAX_NEW_TOKENS = 4
# document (path in the share) → its secret phrase
PUBLIC, HR, PERSONAL = "public/archive.md", "hr/archive.md", "personal/archive.md"
PHRASES = {PUBLIC: "AMBERFALCON", HR: "COBALTWALRUS", PERSONAL: "SCARLETHERON"}
DOCUMENTS = {
    PUBLIC: "# Public archive\n\nThe vault code word of the public archive is AMBERFALCON.\n",
    HR: "# HR archive\n\nThe vault code word of the hr archive is COBALTWALRUS.\n",
    PERSONAL: "# Personal archive\n\nThe vault code word of the personal archive is SCARLETHERON.\n",
}
ACL = """\
default: everyone
rules:
  - path: "hr/**"
    allow: ["group:hr"]
  - path: "personal/**"
    allow: ["user:ucarol@example.com"]
"""
DIRECTORY = """\
users:
  ualice@example.com: [hr, engineering]
  ubob@example.com: [engineering]
  ucarol@example.com: [sales]
aad_object_ids:
  aad-alice: ualice@example.com
"""
# Conversations whose members all belong to `hr` (permissions.channel_audiences).
SLACK_HR_CHANNEL = "C0HRTEAM"
TEAMS_HR_CHANNEL = "19:hr-team@thread.tacv2"


@dataclass(frozen=True)
class Person:
    name: str
    slack_id: str  # the Slack mock's users.info gives <slack_id lowercased>@example.com
    email: str
    may_read: frozenset[str]  # documents, in a private reply

    @property
    def teams(self) -> TeamsUser:
        return TeamsUser(
            id=f"29:{self.name}", name=self.name.title(), aad_object_id=f"aad-{self.name}", email=self.email
        )


ALICE = Person("alice", "UALICE", "ualice@example.com", frozenset({PUBLIC, HR}))
BOB = Person("bob", "UBOB", "ubob@example.com", frozenset({PUBLIC}))
CAROL = Person("carol", "UCAROL", "ucarol@example.com", frozenset({PUBLIC, PERSONAL}))
# An address the directory does not know: `everyone` and their own (unshared) user principal.
STRANGER = Person("stranger", "USTRANGER", "ustranger@example.com", frozenset({PUBLIC}))
PEOPLE = [ALICE, BOB, CAROL, STRANGER]
IDS = [person.name for person in PEOPLE]


def in_hr_room(person: Person) -> frozenset[str]:
    """What `person` may be answered from in a conversation whose audience is `hr`."""
    return frozenset({PUBLIC} | ({HR} if HR in person.may_read else set()))


PUBLIC_ONLY = frozenset({PUBLIC})


def phrases_in(text: str) -> set[str]:
    return {path for path, phrase in PHRASES.items() if phrase in text}


def assert_logged(stored: StoredAnswer | None, expected: frozenset[str]) -> None:
    """The answer log: passages retrieved (all of them: the share is small) and cited are
    exactly the readable documents, with their principals kept for audits."""
    assert stored is not None
    assert {p["path"] for p in stored.passages} == expected
    assert {c["source"] for c in stored.citations} == expected
    assert phrases_in(stored.answer + json.dumps(stored.evidence)) == expected
    assert all(p["principals"] for p in stored.passages)


# --------------------------------------------------------------------------------- the stack


@pytest.fixture(scope="module")
def share(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("leakage")
    for path, text in DOCUMENTS.items():
        (root / "share" / path).parent.mkdir(parents=True, exist_ok=True)
        (root / "share" / path).write_text(text, encoding="utf-8")
    (root / "acl.yaml").write_text(ACL, encoding="utf-8")
    (root / "directory.yaml").write_text(DIRECTORY, encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def stack(share: Path) -> Iterator[Services]:
    services = build_test_services(
        share / "stack",
        docs=share / "share",
        acl_file=share / "acl.yaml",
        directory_file=share / "directory.yaml",
        channel_audiences={SLACK_HR_CHANNEL: "hr", TEAMS_HR_CHANNEL: "hr"},
        max_new_tokens=MAX_NEW_TOKENS,
    )
    yield services
    services.close()


# ------------------------------------------------------------------------------------- Slack


@dataclass
class Slack:
    api: MockSlackApi
    sender: SlackSender
    services: Services

    def final_messages(self, channel: str, thread_ts: str | None) -> list[Message]:
        return [m for m in self.api.thread(channel, thread_ts) if _answer_id(m) is not None]

    async def answer(self, channel: str, thread_ts: str | None, nth: int = 1) -> tuple[str, StoredAnswer | None]:
        """The `nth` finished answer in a thread: all its messages' text, and its log entry."""
        finals = await self.api.wait_until(
            lambda: (found := self.final_messages(channel, thread_ts)) and len(found) >= nth and found, 120.0
        )
        answer_id = _answer_id(finals[nth - 1])
        shown = [m for m in self.api.messages.values() if m.channel == channel and m.ephemeral_for is None]
        return _slack_text(shown, answer_id, thread_ts), self.services.answers.get(answer_id)


def _answer_id(msg: Message) -> str | None:
    for block in msg.blocks:
        for element in block.get("elements", []):
            if element.get("action_id") == ACTION_HELPFUL:
                return str(element["value"])
    return None


def _slack_text(messages: list[Message], answer_id: str | None, thread_ts: str | None) -> str:
    """Everything the bot showed in a thread, as one string (text and blocks)."""
    return "\n".join(m.text + json.dumps(m.blocks) for m in messages if m.thread_ts == thread_ts or m.ts == thread_ts)


@pytest.fixture
async def slack(stack: Services) -> AsyncIterator[Slack]:
    api = await MockSlackApi().start()
    settings = SlackSettings(bot_token=BOT_TOKEN, signing_secret=SIGNING_SECRET, api_url=api.base_url)
    services = dataclasses.replace(stack, settings=stack.settings.model_copy(update={"slack": settings}))
    runner = web.AppRunner(create_web_app(services, [slack_routes(services, 0.2)]), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    sender = SlackSender(f"http://127.0.0.1:{port}/slack/events", api)
    yield Slack(api, sender, services)
    await sender.close()
    await runner.cleanup()
    await api.stop()
    api.assert_clean()


SLACK_PLACES = {
    # place → (channel, how to ask, what person may be answered from there)
    "dm": ("D0LEAK", "im", lambda person: person.may_read),
    "channel": ("C0GENERAL", "mention", lambda person: PUBLIC_ONLY),
    "group": ("G0PRIVATE", "mention", lambda person: PUBLIC_ONLY),
    "hr channel": (SLACK_HR_CHANNEL, "mention", in_hr_room),
}


@pytest.mark.parametrize("place", list(SLACK_PLACES))
@pytest.mark.parametrize("person", PEOPLE, ids=IDS)
async def test_slack_answers_only_from_what_everyone_reading_may_read(slack: Slack, person: Person, place: str) -> None:
    channel, how, expected_for = SLACK_PLACES[place]
    channel = f"{channel}{person.name.upper()}" if how == "im" else channel
    if how == "im":
        event = message(QUESTION, person.slack_id, channel, "im")
        thread_ts = None
    else:
        event = mention(QUESTION, person.slack_id, channel)
        thread_ts = event["ts"]
    assert (await slack.sender.event(event)).status == 200

    shown, stored = await slack.answer(channel, thread_ts)

    expected = expected_for(person)
    assert phrases_in(shown) == expected
    assert_logged(stored, expected)


@pytest.mark.parametrize(
    ("first", "second", "channel"),
    [(ALICE, BOB, SLACK_HR_CHANNEL), (ALICE, CAROL, SLACK_HR_CHANNEL), (CAROL, ALICE, "C0GENERAL")],
    ids=["alice-then-bob-in-hr", "alice-then-carol-in-hr", "carol-then-alice"],
)
async def test_slack_thread_follow_up_by_another_user_gets_only_their_own_share(
    slack: Slack, first: Person, second: Person, channel: str
) -> None:
    opening = mention(QUESTION, first.slack_id, channel)
    await slack.sender.event(opening)
    await slack.answer(channel, opening["ts"])
    follow_up = mention(QUESTION, second.slack_id, channel, thread_ts=opening["ts"])
    await slack.sender.event(follow_up)

    _, stored = await slack.answer(channel, opening["ts"], nth=2)

    expected = in_hr_room(second) if channel == SLACK_HR_CHANNEL else PUBLIC_ONLY
    assert stored is not None and stored.user_id == second.slack_id
    assert_logged(stored, expected)
    visible = [m for m in slack.final_messages(channel, opening["ts"]) if _answer_id(m) == stored.id]
    assert phrases_in("".join(m.text + json.dumps(m.blocks) for m in visible)) == expected


async def _ephemeral_answer(slack: Slack, person: Person, channel: str) -> tuple[Message, str]:
    await slack.sender.command(QUESTION, person.slack_id, channel)
    messages = await slack.api.wait_until(
        lambda: (found := slack.api.ephemeral_for(person.slack_id)) and any(_answer_id(m) for m in found) and found,
        120.0,
    )
    final = next(m for m in messages if _answer_id(m))
    return final, "\n".join(m.text + json.dumps(m.blocks) for m in messages)


@pytest.mark.parametrize("person", PEOPLE, ids=IDS)
async def test_slack_ephemeral_answer_uses_the_askers_own_permissions(slack: Slack, person: Person) -> None:
    _, shown = await _ephemeral_answer(slack, person, "C0GENERAL")

    assert phrases_in(shown) == person.may_read
    assert slack.api.calls_to("chat.postMessage") == []


@pytest.mark.parametrize(
    ("person", "channel"),
    [(ALICE, "C0GENERAL"), (ALICE, SLACK_HR_CHANNEL), (CAROL, SLACK_HR_CHANNEL), (BOB, "C0GENERAL")],
    ids=["alice-general", "alice-hr", "carol-hr", "bob-general"],
)
async def test_slack_share_in_channel_rechecks_against_the_channel(slack: Slack, person: Person, channel: str) -> None:
    private, _ = await _ephemeral_answer(slack, person, channel)
    allowed = person.may_read <= (in_hr_room(ALICE) if channel == SLACK_HR_CHANNEL else PUBLIC_ONLY)

    click = slack.sender.button_click(person.slack_id, private, ACTION_SHARE)
    assert (await slack.sender.interaction(click)).status == 200

    if allowed:
        shown, stored = await slack.answer(channel, None)
        assert phrases_in(shown) == person.may_read
        assert stored is not None and stored.id == _answer_id(private)
    else:
        responses = await slack.api.wait_until(lambda: slack.api.responses)
        refusal = responses[-1][1]
        assert refusal["response_type"] == "ephemeral"
        assert "cannot be shared" in refusal["text"]
        assert phrases_in(json.dumps(refusal)) == set()
        assert slack.api.calls_to("chat.postMessage") == []


# Slack accounts that are not colleagues (users.info fields): they must see nothing at all,
# not even the `everyone` document, wherever and however they ask.
OUTSIDERS = {
    "guest": {"is_restricted": True},
    "single-channel guest": {"is_restricted": True, "is_ultra_restricted": True},
    "slack connect stranger": {"team_id": "T0OTHERORG", "is_stranger": True},
    "other workspace": {"team_id": "T0OTHERORG"},
}


@pytest.mark.parametrize("how", ["dm", "mention", "command"])
@pytest.mark.parametrize("outsider", list(OUTSIDERS))
async def test_slack_guests_and_other_organisations_get_no_content_not_even_everyones(
    slack: Slack, outsider: str, how: str
) -> None:
    user = f"UOUT{uuid.uuid4().hex[:8].upper()}"
    slack.api.users[user] = OUTSIDERS[outsider]
    channel = f"D0OUT{user}" if how == "dm" else "C0GENERAL"
    if how == "command":
        await slack.sender.command(QUESTION, user, channel)
    else:
        event = message(QUESTION, user, channel, "im") if how == "dm" else mention(QUESTION, user, channel)
        await slack.sender.event(event)

    refusal = await slack.api.wait_until(
        lambda: [
            m for m in slack.api.messages.values() if m.text.startswith("Sorry") and m.ephemeral_for in (user, None)
        ]
    )

    await asyncio.sleep(0.5)  # anything else the bot was going to send
    shown = "".join(m.text + json.dumps(m.blocks) for m in slack.api.messages.values()) + json.dumps(
        slack.api.responses
    )
    assert phrases_in(shown) == set()
    assert refusal and slack.services.answers.latest_for(user, channel) is None


# ------------------------------------------------------------------------------------- Teams


@pytest.fixture
async def teams(stack: Services) -> AsyncIterator[tuple[Any, ConnectorMock]]:
    async with ConnectorMock() as connector:
        client = await teams_test_client(stack)
        yield client, connector
        await client.close()


def _teams_text(turn: TeamsTurn) -> str:
    return "\n".join(json.dumps(activity.body) for activity in turn.answer_messages)


TEAMS_PLACES = {
    "personal": (lambda person: TeamsConversation(id=f"a:personal-{person.name}"), lambda person: person.may_read),
    "group chat": (
        lambda person: TeamsConversation(id="19:group-chat@thread.v2", scope="groupChat"),
        lambda person: PUBLIC_ONLY,
    ),
    "channel": (
        lambda person: TeamsConversation(id="19:general@thread.tacv2", scope="channel"),
        lambda person: PUBLIC_ONLY,
    ),
    "hr channel": (lambda person: TeamsConversation(id=TEAMS_HR_CHANNEL, scope="channel"), in_hr_room),
}


@pytest.mark.parametrize("place", list(TEAMS_PLACES))
@pytest.mark.parametrize("person", PEOPLE, ids=IDS)
async def test_teams_answers_only_from_what_everyone_reading_may_read(
    teams: tuple[Any, ConnectorMock], stack: Services, person: Person, place: str
) -> None:
    client, connector = teams
    conversation_for, expected_for = TEAMS_PLACES[place]

    turn = await ask_via_teams(client, connector, QUESTION, person.teams, conversation_for(person))

    expected = expected_for(person)
    assert phrases_in(_teams_text(turn)) == expected
    assert turn.answer_id is not None
    assert_logged(stack.answers.get(turn.answer_id), expected)


@pytest.mark.parametrize(
    ("first", "second", "channel"),
    [(ALICE, BOB, TEAMS_HR_CHANNEL), (ALICE, CAROL, TEAMS_HR_CHANNEL), (CAROL, ALICE, "19:general@thread.tacv2")],
    ids=["alice-then-bob-in-hr", "alice-then-carol-in-hr", "carol-then-alice"],
)
async def test_teams_thread_follow_up_by_another_user_gets_only_their_own_share(
    teams: tuple[Any, ConnectorMock], stack: Services, first: Person, second: Person, channel: str
) -> None:
    client, connector = teams
    chain = TeamsConversation(id=channel, scope="channel", root=f"post-{first.name}-{second.name}")
    await ask_via_teams(client, connector, QUESTION, first.teams, chain)

    turn = await ask_via_teams(client, connector, QUESTION, second.teams, chain)

    expected = in_hr_room(second) if channel == TEAMS_HR_CHANNEL else PUBLIC_ONLY
    assert phrases_in(_teams_text(turn)) == expected
    assert turn.answer_id is not None
    stored = stack.answers.get(turn.answer_id)
    assert stored is not None and stored.user_id == second.teams.aad_object_id
    assert_logged(stored, expected)


@pytest.mark.parametrize("place", list(TEAMS_PLACES))
async def test_teams_users_of_another_tenant_get_no_content_not_even_everyones(stack: Services, place: str) -> None:
    teams = stack.settings.teams.model_copy(update={"allowed_tenant_ids": [TENANT_ID]})
    services = dataclasses.replace(stack, settings=stack.settings.model_copy(update={"teams": teams}))
    visitor = TeamsUser(id="29:visitor", name="Vic Visitor", aad_object_id="aad-visitor", email="vic@example.com")
    conversation = TEAMS_PLACES[place][0](STRANGER)
    async with ConnectorMock() as connector:
        connector.add_member(visitor)
        client = await teams_test_client(services)
        activity = message_activity(
            QUESTION,
            service_url=connector.url,
            user=visitor,
            conversation=conversation,
            mention_bot=place != "personal",
        )
        activity["channelData"] = {"tenant": {"id": "0badc0de-0000-0000-0000-00000000beef"}}
        activity["conversation"]["tenantId"] = "0badc0de-0000-0000-0000-00000000beef"
        try:
            assert (await post_activity(client, activity))[0] == 200
            sent = await connector.wait_for(lambda sent: any(s.type == "message" for s in sent))
            await asyncio.sleep(0.5)  # anything else the bot was going to send
        finally:
            await client.close()

    assert phrases_in(json.dumps([s.body for s in connector.sent])) == set()
    assert "only answer people" in sent[-1].body["text"]
    assert stack.answers.latest_for(visitor.aad_object_id, conversation.id) is None


async def test_teams_roster_email_of_someone_else_does_not_give_their_access(
    teams: tuple[Any, ConnectorMock], stack: Services
) -> None:
    """Mallory's roster entry reads Alice's address, but the directory pins that address to
    Alice's Azure AD object id: Mallory is answered as an unknown colleague."""
    client, connector = teams
    mallory = TeamsUser(id="29:mallory", name="Mallory", aad_object_id="aad-mallory", email=ALICE.email)

    turn = await ask_via_teams(client, connector, QUESTION, mallory, TeamsConversation(id="a:personal-mallory"))

    assert phrases_in(_teams_text(turn)) == PUBLIC_ONLY
    assert turn.answer_id is not None
    assert_logged(stack.answers.get(turn.answer_id), PUBLIC_ONLY)


# ----------------------------------------------------------------------------- thread memory


class PromptRecorder(WrappedModel):
    """The stack's model, keeping every prompt it is given."""

    def __init__(self, inner: Any) -> None:
        super().__init__(inner)
        self.prompts: list[str] = []

    def stream(self, messages: Sequence[ChatMessage], settings: GenerationSettings | None = None) -> Iterator[str]:
        self.prompts.append("\n".join(message.content for message in messages))
        return super().stream(messages, settings)


def test_a_private_thread_reused_by_someone_else_never_carries_the_first_answer(stack: Services) -> None:
    model = PromptRecorder(stack.model)
    agent = Agent(
        stack.knowledge.retriever,
        model,
        stack.settings.agent,
        stack.settings.retrieval,
        filters_for=stack.access.filters_for,
        generation=GenerationSettings(max_new_tokens=MAX_NEW_TOKENS),
        embedder=stack.knowledge.embedder,
    )

    def ask(person: Person) -> None:
        # `lore ask --as EMAIL --thread shared`: the same thread id for two people.
        asker = Asker(person.email, email=person.email)
        answer_and_remember(agent, stack.memory, Question(QUESTION, asker, "cli", "shared-thread", "cli", "private"))

    ask(ALICE)
    assert phrases_in(model.prompts[-1]) == ALICE.may_read
    ask(BOB)

    assert phrases_in(model.prompts[-1]) == BOB.may_read, "Alice's answer reached Bob's prompt"


# --------------------------------------------------------------------------------------- CLI


@pytest.fixture(scope="module")
def lore_cli(share: Path) -> Iterator[Path]:
    """A lore.toml over the share (its own home), indexed with `lore index`."""
    home = share / "cli-home"
    with lore_config(share, home, source="share"):
        code, output = lore("index", "--json")
        assert code == 0, output
        yield home


@contextlib.contextmanager
def lore_config(share: Path, home: Path, source: str) -> Iterator[None]:
    """`LORE_CONFIG` pointing at a lore.toml over the share (ACL, directory, tiny model), and no
    other `LORE_*` variable, for the duration."""
    config = share / "lore.toml"
    config.write_text(
        f"""
home = "{home}"
acl_file = "{share / "acl.yaml"}"
directory_file = "{share / "directory.yaml"}"
[[sources]]
name = "{source}"
path = "{share / "share"}"
[model]
base_model = "{build_tiny_model(share / "cli-model")}"
max_new_tokens = {MAX_NEW_TOKENS}
""",
        encoding="utf-8",
    )
    with pytest.MonkeyPatch.context() as patch:
        for name in [name for name in os.environ if name.startswith("LORE_")]:
            patch.delenv(name)
        patch.setenv("LORE_CONFIG", str(config))
        yield


def lore(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    # stdout only: model loading reports its progress on stderr.
    return result.exit_code, result.stdout if result.exit_code == 0 else result.output


@pytest.mark.parametrize("person", PEOPLE, ids=IDS)
def test_cli_ask_and_search_as_someone_show_only_what_they_may_read(lore_cli: Path, person: Person) -> None:
    code, output = lore("search", QUESTION, "--as", person.email, "--json", "--chunks")
    assert code == 0, output
    assert {result["source"] for result in json.loads(output)["results"]} == person.may_read
    assert phrases_in(output) == person.may_read

    code, output = lore("ask", QUESTION, "--as", person.email, "--json")
    assert code == 0, output
    answer = json.loads(output)
    assert phrases_in(output) == person.may_read
    assert {c["source"] for c in answer["citations"]} == person.may_read
    database = Database(f"sqlite:///{lore_cli / 'lore.db'}")
    try:
        stored = AnswerLog(database).get(answer["id"])
    finally:
        database.close()
    assert_logged(stored, person.may_read)
    assert stored is not None and stored.user_id == person.email


def test_cli_as_needs_an_email_address(lore_cli: Path) -> None:
    code, output = lore("search", QUESTION, "--as", "alice")
    assert code != 0
    assert re.search(r"not an e-mail address", output)


def test_answer_log_and_feedback_export_keep_who_saw_what(lore_cli: Path) -> None:
    code, output = lore("ask", QUESTION, "--as", ALICE.email, "--json")
    assert code == 0, output
    answer_id = json.loads(output)["id"]
    database = Database(f"sqlite:///{lore_cli / 'lore.db'}")
    try:
        FeedbackStore(database).record(Feedback(answer_id, "cli", ALICE.email, "helpful"))
    finally:
        database.close()

    code, output = lore("feedback", "export", "--format", "jsonl")

    assert code == 0, output
    row = next(json.loads(line) for line in output.splitlines() if json.loads(line)["answer_id"] == answer_id)
    assert set(row["readers"]) == {"everyone", "user:ualice@example.com", "group:hr", "group:engineering"}
    assert {source["path"]: source["principals"] for source in row["sources"]} == {
        PUBLIC: ["everyone"],
        HR: ["group:hr"],
    }


# ------------------------------------------------------------------------ a cloud source


@pytest.mark.parametrize("person", PEOPLE, ids=IDS)
def test_a_google_drive_file_shared_with_one_user_reaches_only_that_user(tmp_path: Path, person: Person) -> None:
    """Google Drive's own sharing decides (permissions = "source"): Carol's file in a shared
    drive with no members is found by Carol, by nobody else, whatever they ask."""
    from tests.cloud.gdrive_harness import drive_server

    with drive_server(tmp_path) as drive:
        drive.state.add_drive("0Avault", "Vault", [])
        drive.state.add(
            "archive.md",
            "0Avault",
            DOCUMENTS[PERSONAL].encode(),
            permissions=[{"type": "user", "emailAddress": CAROL.email, "role": "reader"}],
        )
        config = tmp_path / "lore.toml"
        config.write_text(
            f'home = "{tmp_path / "home"}"\n[[sources]]\nname = "drive"\nkind = "gdrive"\n'
            f'credentials_file = "{drive.key_file}"\ndrives = ["0Avault"]\napi_endpoint = "{drive.root}"\n',
            encoding="utf-8",
        )
        with pytest.MonkeyPatch.context() as patch:
            for name in [name for name in os.environ if name.startswith("LORE_")]:
                patch.delenv(name)
            patch.setenv("LORE_CONFIG", str(config))
            code, output = lore("index", "--json")
            assert code == 0 and json.loads(output)["added"] == 1, output
            code, output = lore("search", QUESTION, "--as", person.email, "--json", "--chunks")

    assert code == 0, output
    found = {result["source"] for result in json.loads(output)["results"]}  # "source": the path
    assert found == ({"Vault/archive.md"} if person is CAROL else set())
    assert ("SCARLETHERON" in output) == (person is CAROL)


# ------------------------------------------------------------------ a SharePoint library


@pytest.fixture(scope="module")
def sharepoint_cli(share: Path) -> Iterator[Path]:
    """The same three documents in a SharePoint library on a local Graph, shared by the drive
    itself (no ACL file says anything about it): the public one through an organisation link
    (which the source counts as everyone), the HR folder with group:hr only, the personal one
    with Carol only. Indexed with `lore index`; the server stays up for the module."""
    from tests.cloud.graph_server import CLIENT_ID, CLIENT_SECRET, TENANT, graph_server, group_grant, link_grant
    from tests.cloud.graph_server import user_grant as shared_with

    home = share / "cloud-home"
    with graph_server(share) as (graph, ca), pytest.MonkeyPatch.context() as patch:
        drive = graph.add_drive("Documents")
        graph.add(drive, "public", grants=[link_grant("organization")], inherits=False)
        graph.add(drive, "hr", grants=[group_grant("hr")], inherits=False)
        graph.add(drive, "personal", grants=[shared_with(CAROL.email)], inherits=False)
        for path, text in DOCUMENTS.items():
            graph.add(drive, path, text.encode())
        config = share / "cloud.toml"
        config.write_text(
            f'home = "{home}"\ndirectory_file = "{share / "directory.yaml"}"\n'
            f'[[sources]]\nname = "team-files"\nkind = "sharepoint"\ntenant_id = "{TENANT}"\n'
            f'client_id = "{CLIENT_ID}"\ndrives = ["{drive.id}"]\norganisation_links_grant_everyone = true\n'
            f'graph_url = "{graph.base}/v1.0"\nauthority_url = "{graph.base}"\n'
            f'[model]\nbase_model = "{build_tiny_model(share / "cli-model")}"\nmax_new_tokens = {MAX_NEW_TOKENS}\n',
            encoding="utf-8",
        )
        for name in [name for name in os.environ if name.startswith("LORE_")]:
            patch.delenv(name)
        patch.setenv("LORE_CONFIG", str(config))
        patch.setenv("LORE_SOURCES__0__CLIENT_SECRET", CLIENT_SECRET)
        patch.setenv("SSL_CERT_FILE", str(ca))
        code, output = lore("index", "--json")
        assert code == 0 and json.loads(output)["added"] == 3, output
        yield home


@pytest.mark.parametrize("person", PEOPLE, ids=IDS)
def test_cli_a_sharepoint_librarys_own_sharing_decides_who_reads_what(sharepoint_cli: Path, person: Person) -> None:
    code, output = lore("search", QUESTION, "--as", person.email, "--json", "--chunks")
    assert code == 0, output
    assert {result["source"] for result in json.loads(output)["results"]} == {
        f"Documents/{path}" for path in person.may_read
    }
    assert phrases_in(output) == person.may_read

    code, output = lore("ask", QUESTION, "--as", person.email, "--json")
    assert code == 0, output
    assert phrases_in(output) == person.may_read
