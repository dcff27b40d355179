"""AccessPolicy: search filters per place, and the "share in channel" check."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.core.access import AccessPolicy
from bot.identity import DirectoryFile, PrincipalsResolver
from bot.policies import build_access_policy, build_permission_policy
from bot.settings import LoreSettings
from bot.types import Answer, Asker, Place, Question
from knowledge.config import FolderSourceSettings
from knowledge.errors import ConfigurationError
from knowledge.types import Passage, SearchFilters

ALICE = Asker(user_id="U1", email="alice@example.com")  # hr
BOB = Asker(user_id="U2", email="bob@example.com")  # engineering
STRANGER = Asker(user_id="U3")


@pytest.fixture
def policy(tmp_path: Path) -> AccessPolicy:
    directory = tmp_path / "directory.yaml"
    directory.write_text("users: {alice@example.com: [hr], bob@example.com: [engineering]}\n")
    return AccessPolicy(PrincipalsResolver(DirectoryFile(directory)), {"C0HR": "HR", "C0ENG": "group:engineering"})


def ask(asker: Asker, place: Place, conversation: str = "C0GENERAL") -> Question:
    return Question("how much do we pay?", asker, conversation, "t1", "slack", place)


def test_private_places_use_the_askers_own_principals(policy: AccessPolicy) -> None:
    assert policy.filters_for(ask(ALICE, "private")) == SearchFilters(
        principals=frozenset({"everyone", "user:alice@example.com", "group:hr"})
    )
    assert policy.filters_for(ask(STRANGER, "private")).principals == {"everyone"}


@pytest.mark.parametrize("place", ["channel", "group", "thread"])
def test_shared_places_see_only_what_every_reader_may(policy: AccessPolicy, place: Place) -> None:
    assert policy.filters_for(ask(ALICE, place)).principals == {"everyone"}
    # A channel configured for hr: its members all hold group:hr ...
    assert policy.filters_for(ask(ALICE, place, "C0HR")).principals == {"everyone", "group:hr"}
    # ... but asking there never gives someone more than they hold themselves.
    assert policy.filters_for(ask(BOB, place, "C0HR")).principals == {"everyone"}
    assert policy.filters_for(ask(BOB, place, "C0ENG")).principals == {"everyone", "group:engineering"}
    # A personal document (user:alice) never reaches a shared place.
    assert "user:alice@example.com" not in policy.filters_for(ask(ALICE, place, "C0HR")).principals


def passage(path: str, *principals: str) -> Passage:
    return Passage("c-" + path, "share", path, path, "", "", "text", 1.0, frozenset(principals))


def answer_from(*passages: Passage) -> Answer:
    return Answer("a1", ask(ALICE, "private"), "text", (), (), passages, True, "m", None)


def test_share_in_channel_rechecks_every_passage(policy: AccessPolicy) -> None:
    public = passage("handbook/pay-days.md", "everyone")
    hr = passage("hr/salaries.md", "group:hr", "user:cfo@example.com")
    mine = passage("people/alice.md", "user:alice@example.com")
    general = policy.audience_of("C0GENERAL")
    assert general == {"everyone"}
    assert policy.may_share(answer_from(public), general) == (True, "")
    allowed, reason = policy.may_share(answer_from(public, hr, mine), general)
    assert not allowed
    assert "(hr/salaries.md, people/alice.md)" in reason and "cannot be shared" in reason
    assert policy.may_share(answer_from(public, hr), policy.audience_of("C0HR")).allowed
    assert not policy.may_share(answer_from(mine), policy.audience_of("C0HR")).allowed
    assert policy.may_share(answer_from(), general).allowed  # a fallback reply uses no document
    logged = [("handbook/pay-days.md", ["everyone"]), ("hr/salaries.md", ["group:hr"])]
    assert not policy.may_share_documents(logged, general).allowed
    assert policy.may_share_documents(logged, policy.audience_of("C0HR")).allowed


def test_built_from_settings(tmp_path: Path) -> None:
    share = tmp_path / "share"
    share.mkdir()
    (tmp_path / "dir.yaml").write_text("users: {alice@example.com: [hr]}\n")
    (tmp_path / "acl.yaml").write_text("default: [group:hr]\n")
    settings = LoreSettings(
        home=tmp_path / "home",
        acl_file=tmp_path / "acl.yaml",
        directory_file=tmp_path / "dir.yaml",
        sources=[FolderSourceSettings(name="share", path=share)],
        permissions={"channel_audiences": {"C0HR": "hr"}, "unix_users": {"root": "root@example.com"}},
    )
    access = build_access_policy(settings)
    assert access.filters_for(ask(ALICE, "channel", "C0HR")).principals == {"everyone", "group:hr"}
    assert build_permission_policy(settings).acl_path == tmp_path / "acl.yaml"
    inside = settings.model_copy(update={"acl_file": share / "acl.yaml"})
    with pytest.raises(ConfigurationError, match="inside the indexed folder"):
        build_permission_policy(inside)
