"""The leakage matrix, after someone narrows who may read a document: Bob (no `hr`) asks on
Slack (DM), Teams (personal chat) and the CLI (`lore search --as`, `lore ask --as`) after
- a public PDF was locked with a password;
- a public DOCX (its ACL rule defers to the file system) got `chmod 600` and a rewrite that
  cannot be parsed;
- Lore's account was denied on the folder `restricted/`.
None of their phrases may reach him; the last good DOCX text stays readable by its owner
only. The failures are counted, and `lore index` and /healthz surface them.

Tests run as root, who reads everything, so the refusal is injected into scandir."""

from __future__ import annotations

import errno
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

import knowledge.sources.filesystem as filesystem
from bot.app import Services
from bot.server import create_web_app
from bot.types import Asker, Question
from tests.permissions.test_leakage import (  # noqa: F401  (fixtures: slack, teams)
    BOB,
    DIRECTORY,
    QUESTION,
    Slack,
    lore,
    lore_config,
    slack,
    teams,
)
from tests.support.bot_connector import ConnectorMock, TeamsConversation, ask_via_teams
from tests.support.files import pdf_bytes, write_document
from tests.support.slack_api import message
from tests.support.stack import build_test_services

ARCHIVE, PLAN, BUDGET, MINUTES = "public/archive.md", "public/plan.pdf", "public/budget.docx", "restricted/minutes.md"
PHRASES = {ARCHIVE: "AMBERFALCON", PLAN: "JADEPELICAN", BUDGET: "TEALMARMOT", MINUTES: "OLIVEBISON"}
ACL = """\
default: everyone
rules:
  - path: "public/budget.docx"
    allow: filesystem
"""
MAX_NEW_TOKENS = 4


def phrases_in(text: str) -> set[str]:
    return {path for path, phrase in PHRASES.items() if phrase in text}


def sentence(path: str) -> str:
    return f"the vault code word of the {Path(path).stem} archive is {PHRASES[path]}"


@contextmanager
def lore_denied_on(folder: Path) -> Iterator[None]:
    real_scandir = os.scandir

    def scandir(path: str | Path) -> Iterator[os.DirEntry[str]]:
        if Path(path).resolve() == folder.resolve():
            raise PermissionError(errno.EACCES, "Permission denied")
        return real_scandir(path)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(filesystem.os, "scandir", scandir)
        yield


@pytest.fixture(scope="module")
def share(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("narrowing")
    docs = root / "share"
    (docs / "public").mkdir(parents=True)
    (docs / ARCHIVE).write_text(f"# Public archive\n\nThe {sentence(ARCHIVE)}.\n")
    write_document(docs / PLAN, sentence(PLAN))
    write_document(docs / BUDGET, sentence(BUDGET))
    write_document(docs / MINUTES, sentence(MINUTES))
    for path in docs.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    (root / "acl.yaml").write_text(ACL)
    (root / "directory.yaml").write_text(DIRECTORY)
    return root


@pytest.fixture(scope="module")
def stack(share: Path) -> Iterator[Services]:
    services = build_test_services(
        share / "stack",
        docs=share / "share",
        acl_file=share / "acl.yaml",
        directory_file=share / "directory.yaml",
        max_new_tokens=MAX_NEW_TOKENS,
    )
    bob = services.access.filters_for(
        Question(QUESTION, Asker(BOB.email, email=BOB.email), "cli", "t", "cli", "private")
    )
    before = {p.path for p in services.knowledge.retriever.search(QUESTION, k=20, filters=bob)}
    assert before == set(PHRASES), "every document starts readable by everyone"
    docs = share / "share"
    (docs / PLAN).write_bytes(pdf_bytes(sentence(PLAN), password="hunter2"))
    (docs / BUDGET).chmod(0o600)
    (docs / BUDGET).write_bytes((docs / BUDGET).read_bytes()[:400])
    with lore_denied_on(docs / "restricted"):
        for _ in range(3):  # three refreshes in a row: the failures are surfaced
            services.knowledge.refresh()
    yield services
    services.close()


async def test_slack_dm_after_narrowing_shows_only_what_is_still_public(slack: Slack) -> None:  # noqa: F811  (the fixture imported above)
    channel = "D0NARROWBOB"
    assert (await slack.sender.event(message(QUESTION, BOB.slack_id, channel, "im"))).status == 200

    shown, stored = await slack.answer(channel, None)

    assert phrases_in(shown) == {ARCHIVE}
    assert stored is not None and {p["path"] for p in stored.passages} == {ARCHIVE}


async def test_teams_personal_chat_after_narrowing_shows_only_what_is_still_public(
    teams: tuple[Any, ConnectorMock],  # noqa: F811  (the fixture imported above)
    stack: Services,
) -> None:
    client, connector = teams

    turn = await ask_via_teams(client, connector, QUESTION, BOB.teams, TeamsConversation(id="a:personal-bob"))

    assert phrases_in("\n".join(json.dumps(a.body) for a in turn.answer_messages)) == {ARCHIVE}


@pytest.fixture(scope="module")
def cli_config(share: Path, stack: Services) -> Iterator[None]:
    with lore_config(share, stack.settings.home, source="handbook"):
        yield


def test_cli_search_and_ask_after_narrowing_show_only_what_is_still_public(cli_config: None) -> None:
    code, output = lore("search", QUESTION, "--as", BOB.email, "--json", "--chunks", "-k", "20")
    assert code == 0, output
    assert {result["source"] for result in json.loads(output)["results"]} == {ARCHIVE}

    code, output = lore("ask", QUESTION, "--as", BOB.email, "--json")
    assert code == 0, output
    assert phrases_in(output) == {ARCHIVE}


def test_the_owner_still_reads_the_last_good_text_of_the_file_they_restricted(stack: Services) -> None:
    owner = stack.knowledge.retriever.search(QUESTION, k=20, filters=_filters("user:root@localhost"))
    assert {p.path for p in owner} == {ARCHIVE, BUDGET}


def test_lore_index_lists_the_files_failing_refresh_after_refresh(cli_config: None, share: Path) -> None:
    with lore_denied_on(share / "share" / "restricted"):
        code, output = lore("index")

    assert code == 0, output
    failing = [line for line in output.splitlines() if "failing for" in line]
    assert len(failing) == 3 and all("failing for 4 refreshes" in line for line in failing)
    assert {
        name for name in ("plan.pdf", "budget.docx", "handbook:restricted") if any(name in line for line in failing)
    } == {"plan.pdf", "budget.docx", "handbook:restricted"}


async def test_healthz_counts_the_files_failing_refresh_after_refresh(stack: Services) -> None:
    runner = web.AppRunner(create_web_app(stack, []), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{port}/healthz") as response:
            body = await response.json()
    finally:
        await runner.cleanup()

    assert body["index"]["failing_files"] == 3
    assert {Path(item["path"]).name for item in body["index"]["failing"]} >= {"plan.pdf", "budget.docx"}


def _filters(*principals: str) -> Any:
    from knowledge.types import SearchFilters

    return SearchFilters(principals=frozenset(principals))
