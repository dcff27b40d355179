"""End to end through the real index (MiniLM, Chroma, SQLite): a share with public,
group-only, ACL-restricted and personal documents, each holding a secret phrase; searches
return exactly what each reader may read; a chmod or an ACL edit takes effect at the next
refresh without re-embedding; random ACL trees and modes agree with the reference model."""

from __future__ import annotations

import grp
import os
import pwd
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.core.access import AccessPolicy
from bot.identity import DirectoryFile, PrincipalsResolver
from bot.types import Asker, Place, Question
from knowledge.knowledge_base import KnowledgeBase
from knowledge.permissions import (
    FileModePermissions,
    PermissionPolicy,
)
from knowledge.retrieval import MODES as SEARCH_MODES
from knowledge.retrieval import Mode
from knowledge.types import SearchFilters
from tests.permissions.acl_trees import (
    FILE_GROUP,
    MODES,
    OWNER_EMAIL,
    PATHS,
    AclTree,
    Reader,
    acl_trees,
    readers,
)
from tests.support.knowledge_index import CountingEmbedder, make_knowledge

OWNER = pwd.getpwuid(os.getuid()).pw_name
GROUP = grp.getgrgid(os.getgid()).gr_name

# path → (mode, secret phrase). Every document also says "quarterly figures".
SHARE = {
    "handbook/holidays.md": (0o644, "zephyr lantern"),
    "finance/budget.md": (0o640, "copper meadow"),  # group-readable: Unix group → finance
    "people/dana-review.md": (0o600, "violet harbor"),  # owner only: owner → dana
    "hr/salaries.md": (0o644, "granite orchard"),  # world-readable, but the ACL says hr + cfo
    "board/minutes.md": (0o644, "amber glacier"),  # ACL: board
}
ACL = """
rules:
  - path: "hr/**"
    allow: ["group:hr", "user:cfo@example.com"]
  - path: "board/**"
    allow: ["group:board"]
"""
DIRECTORY = """
users:
  alice@example.com: [hr]
  bob@example.com: [finance]
  carol@example.com: [board]
  dana@example.com: []
"""
PEOPLE = {
    "alice": (Asker("U1", email="alice@example.com"), {"handbook/holidays.md", "hr/salaries.md"}),
    "bob": (Asker("U2", email="bob@example.com"), {"handbook/holidays.md", "finance/budget.md"}),
    "carol": (Asker("U3", email="carol@example.com"), {"handbook/holidays.md", "board/minutes.md"}),
    "dana": (
        Asker("U4", email="dana@example.com"),
        {"handbook/holidays.md", "people/dana-review.md", "finance/budget.md"},
    ),
    "cfo": (Asker("U5", email="cfo@example.com"), {"handbook/holidays.md", "hr/salaries.md"}),
    "stranger": (Asker("U6"), {"handbook/holidays.md"}),
}


def write_share(root: Path, documents: dict[str, tuple[int, str]]) -> None:
    for relative, (mode, phrase) in documents.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"# {path.stem}\n\nThe quarterly figures mention {phrase}.\n")
        path.chmod(mode)


def replace_file(path: Path, text: str) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.replace(path)


class QueryCachingEmbedder(CountingEmbedder):
    """The real MiniLM; the tests repeat a few queries many times, so each is embedded once."""

    def __init__(self) -> None:
        super().__init__()
        self.queries: dict[str, np.ndarray] = {}

    def embed_query(self, text: str) -> np.ndarray:
        if text not in self.queries:
            self.queries[text] = super().embed_query(text)
        return self.queries[text]


@pytest.fixture(scope="module")
def embedder() -> CountingEmbedder:
    return QueryCachingEmbedder()


@pytest.fixture
def setup(tmp_path: Path, embedder: CountingEmbedder) -> Iterator[tuple[KnowledgeBase, AccessPolicy, Path]]:
    share = tmp_path / "share"
    write_share(share, SHARE)
    (tmp_path / "acl.yaml").write_text(ACL)
    (tmp_path / "directory.yaml").write_text(DIRECTORY)
    modes = FileModePermissions(unix_groups={GROUP: "finance"}, unix_users={OWNER: "dana@example.com"})
    policy = PermissionPolicy(tmp_path / "acl.yaml", [("share", share)], modes)
    knowledge = make_knowledge(tmp_path / "home", {"share": share}, embedder, permissions=policy)
    report = knowledge.refresh()
    assert (report.added, report.failed) == (len(SHARE), [])
    embedder.take()
    access = AccessPolicy(PrincipalsResolver(DirectoryFile(tmp_path / "directory.yaml")), {"C0HR": "hr"})
    yield knowledge, access, tmp_path
    knowledge.close()


def visible(
    knowledge: KnowledgeBase, filters: SearchFilters, query: str = "quarterly figures", mode: Mode = "hybrid"
) -> set[str]:
    passages = knowledge.retriever.search(query, k=20, filters=filters, mode=mode, max_per_document=1)
    return {passage.path for passage in passages}


def question(asker: Asker, place: Place, conversation: str = "C0GENERAL") -> Question:
    return Question("What do the quarterly figures say?", asker, conversation, "t", "slack", place)


@pytest.mark.parametrize("mode", SEARCH_MODES)
def test_each_reader_finds_exactly_their_documents(setup: tuple[KnowledgeBase, AccessPolicy, Path], mode: Mode) -> None:
    knowledge, access, _ = setup
    assert visible(knowledge, SearchFilters(), mode=mode) == set(SHARE)  # no filter: admin view
    for name, (asker, allowed) in PEOPLE.items():
        filters = access.filters_for(question(asker, "private"))
        assert visible(knowledge, filters, mode=mode) == allowed, name
        if mode == "dense":
            continue  # dense search ranks by meaning: a phrase is checked through hybrid and keyword
        # Searching for each secret phrase finds it only for those who may read it.
        for path, (_, phrase) in SHARE.items():
            found = knowledge.retriever.search(phrase, k=5, filters=filters, mode=mode)
            assert all(p.path in allowed for p in found), (name, phrase)
            assert (phrase in " ".join(p.text for p in found)) == (path in allowed), (name, phrase)


def test_shared_places_see_only_everyone_documents(setup: tuple[KnowledgeBase, AccessPolicy, Path]) -> None:
    knowledge, access, _ = setup
    alice = PEOPLE["alice"][0]
    shared: tuple[Place, ...] = ("channel", "group", "thread")
    for place in shared:
        assert visible(knowledge, access.filters_for(question(alice, place))) == {"handbook/holidays.md"}
    in_hr_channel = access.filters_for(question(alice, "channel", "C0HR"))
    assert visible(knowledge, in_hr_channel) == {"handbook/holidays.md", "hr/salaries.md"}
    bob_in_hr_channel = access.filters_for(question(PEOPLE["bob"][0], "thread", "C0HR"))
    assert visible(knowledge, bob_in_hr_channel) == {"handbook/holidays.md"}


def test_a_symlink_in_the_share_cannot_publish_hr_or_a_file_outside_the_share(
    setup: tuple[KnowledgeBase, AccessPolicy, Path],
) -> None:
    knowledge, access, tmp_path = setup
    share = tmp_path / "share"
    # A share writer links the restricted folder under a name the ACL does not restrict, and a
    # world-readable file outside the share into it.
    (share / "a-notes").symlink_to(share / "hr", target_is_directory=True)
    outside = tmp_path / "server-config.md"
    outside.write_text("# config\n\nThe quarterly figures mention obsidian falcon.\n")
    outside.chmod(0o644)
    (share / "handbook" / "config.md").symlink_to(outside)

    report = knowledge.refresh()

    assert (report.added, report.deleted, report.failed) == (0, 0, [])
    assert visible(knowledge, SearchFilters()) == set(SHARE)  # the real paths, nothing else
    stranger = access.filters_for(question(PEOPLE["stranger"][0], "private"))
    for phrase in ("granite orchard", "obsidian falcon"):
        found = knowledge.retriever.search(phrase, k=5, filters=stranger, mode="keyword")
        assert phrase not in " ".join(p.text for p in found)
    alice = access.filters_for(question(PEOPLE["alice"][0], "private"))
    assert "hr/salaries.md" in visible(knowledge, alice)  # hr keeps its real path and its rule


def test_passages_carry_their_principals(setup: tuple[KnowledgeBase, AccessPolicy, Path]) -> None:
    knowledge, _, _ = setup
    by_path = {p.path: p.principals for p in knowledge.retriever.search("quarterly figures", k=20, max_per_document=1)}
    assert by_path == {
        "handbook/holidays.md": {"everyone"},
        "finance/budget.md": {"group:finance", "user:dana@example.com"},
        "people/dana-review.md": {"user:dana@example.com"},
        "hr/salaries.md": {"group:hr", "user:cfo@example.com"},
        "board/minutes.md": {"group:board"},
    }
    assert public_documents(knowledge) == {("share", "handbook/holidays.md")}


def test_chmod_and_acl_edits_apply_at_next_refresh_without_reembedding(
    setup: tuple[KnowledgeBase, AccessPolicy, Path], embedder: CountingEmbedder
) -> None:
    knowledge, access, home = setup
    stranger = access.filters_for(question(PEOPLE["stranger"][0], "private"))
    (home / "share" / "people" / "dana-review.md").chmod(0o644)
    assert "people/dana-review.md" not in visible(knowledge, stranger)  # not before the refresh
    report = knowledge.refresh()
    assert (report.updated, report.added, report.unchanged) == (1, 0, len(SHARE) - 1)
    assert "people/dana-review.md" in visible(knowledge, stranger)

    replace_file(home / "acl.yaml", 'rules: [{path: "board/**", allow: [group:board]}]\ndefault: [group:staff]\n')
    report = knowledge.refresh()
    assert (report.updated, report.unchanged, report.failed) == (len(SHARE) - 1, 1, [])  # board/ keeps its rule
    assert visible(knowledge, stranger) == set()
    staff = SearchFilters(principals=frozenset({"group:staff"}))
    assert visible(knowledge, staff) == set(SHARE) - {"board/minutes.md"}
    assert public_documents(knowledge) == set()
    assert embedder.take() == []  # permissions alone never re-embed


def test_a_broken_acl_edit_stops_the_refresh_and_keeps_the_index(
    setup: tuple[KnowledgeBase, AccessPolicy, Path],
) -> None:
    from knowledge.errors import ConfigurationError

    knowledge, access, home = setup
    replace_file(home / "acl.yaml", "rules: [{path: 'hr/**', allow: [hr]}]\n")
    with pytest.raises(ConfigurationError, match="'hr' is not a principal"):
        knowledge.refresh()
    alice = access.filters_for(question(PEOPLE["alice"][0], "private"))
    assert visible(knowledge, alice) == PEOPLE["alice"][1]  # the last good permissions still apply


# -- random ACL trees and modes, through the real index --------------------------------------


@pytest.fixture(scope="module")
def random_share(
    tmp_path_factory: pytest.TempPathFactory, embedder: CountingEmbedder
) -> Iterator[tuple[KnowledgeBase, Path]]:
    folder = tmp_path_factory.mktemp("random-share")
    share = folder / "share"
    write_share(share, {path: (0o644, f"document {number}") for number, path in enumerate(PATHS)})
    (folder / "acl.yaml").write_text("")
    modes = FileModePermissions(unix_groups={GROUP: FILE_GROUP}, unix_users={OWNER: OWNER_EMAIL})
    policy = PermissionPolicy(folder / "acl.yaml", [("share", share)], modes)
    knowledge = make_knowledge(folder / "home", {"share": share}, embedder, permissions=policy)
    knowledge.refresh()
    embedder.take()
    yield knowledge, folder
    knowledge.close()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    tree=acl_trees(("share",)),
    modes=st.lists(st.sampled_from(MODES), min_size=len(PATHS), max_size=len(PATHS)),
    people=st.lists(readers, min_size=1, max_size=3),
    mode=st.sampled_from(SEARCH_MODES),
)
def test_random_acl_trees_through_the_index(
    random_share: tuple[KnowledgeBase, Path],
    embedder: CountingEmbedder,
    tree: AclTree,
    modes: list[int],
    people: list[Reader],
    mode: Mode,
) -> None:
    knowledge, folder = random_share
    replace_file(folder / "acl.yaml", tree.text())
    for path, file_mode in zip(PATHS, modes, strict=True):
        (folder / "share" / path).chmod(file_mode)
    assert knowledge.refresh().failed == []
    expected = {path: tree.expected("share", path, m) for path, m in zip(PATHS, modes, strict=True)}
    for reader in people:
        readable = {path for path, principals in expected.items() if principals & reader.principals()}
        assert visible(knowledge, SearchFilters(principals=reader.principals()), "document", mode) == readable
    assert public_documents(knowledge) == {
        ("share", p) for p, principals in expected.items() if "everyone" in principals
    }
    assert embedder.take() == []


def public_documents(knowledge: KnowledgeBase) -> set[tuple[str, str]]:
    """(source, path) of the documents everyone may read: what a shared adapter trains on."""
    return {(record.source, record.path) for record in knowledge.readable_documents(frozenset({"everyone"}))}
