"""Property tests over random ACL trees, file modes and readers, against a reference model."""

from __future__ import annotations

import tempfile
from itertools import count
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.identity import PrincipalsResolver
from bot.types import Asker
from knowledge.index.catalog import acl_key
from knowledge.index.sqlite_catalog import SqliteCatalog
from knowledge.permissions import (
    FileModePermissions,
    PermissionPolicy,
    may_read,
    parse_acl,
)
from knowledge.types import SourceFile
from tests.permissions.acl_trees import (
    FILE_GROUP,
    MODES,
    OWNER_EMAIL,
    PATHS,
    PRINCIPALS,
    AclTree,
    Reader,
    acl_trees,
    readers,
    reference_may_read,
)

SOURCES = ("hr-share", "wiki")
MODE_RULES = FileModePermissions(
    unix_groups={"staff": FILE_GROUP}, unix_users={"owner": OWNER_EMAIL}, group_of=lambda _: "staff"
)
_names = count()


def source_file(source: str, path: str, mode: int) -> SourceFile:
    return SourceFile(source, f"/srv/{source}", path, "file:///x", 1, 1.0, owner="owner", mode=mode)


@settings(max_examples=150, deadline=None)
@given(acl_trees(SOURCES), st.sampled_from(SOURCES), st.sampled_from(PATHS), st.sampled_from(MODES))
def test_resolver_agrees_with_the_reference_model(tree: AclTree, source: str, path: str, mode: int) -> None:
    folder = Path(tempfile.gettempdir()) / "lore-acl-properties"
    folder.mkdir(exist_ok=True)
    acl = folder / f"acl-{next(_names)}.yaml"  # a new file per example: no reload races
    acl.write_text(tree.text())
    try:
        policy = PermissionPolicy(acl, [(name, Path(f"/srv/{name}")) for name in SOURCES], MODE_RULES)
        explanation = policy.explain(source_file(source, path, mode))
    finally:
        acl.unlink()
    assert explanation.principals == tree.expected(source, path, mode)
    assert explanation.decided_by in ("rule", "default", "file-mode")


@settings(max_examples=50, deadline=None)
@given(acl_trees(SOURCES), st.sampled_from(PATHS))
def test_parsing_is_insensitive_to_principal_case_and_spacing(tree: AclTree, path: str) -> None:
    shouty = tree.text().replace("group:", "  GROUP:").replace("user:", "User:").replace("everyone", "EveryOne")
    plain, loud = parse_acl(tree.text()).decide("wiki", path), parse_acl(shouty).decide("wiki", path)
    assert (plain.grant and plain.grant.principals) == (loud.grant and loud.grant.principals)


@settings(max_examples=300, deadline=None)
@given(st.frozensets(st.sampled_from(PRINCIPALS), max_size=4), readers)
def test_a_reader_sees_a_document_iff_principals_intersect(document: frozenset[str], reader: Reader) -> None:
    held = PrincipalsResolver()(Asker(user_id="U", email=reader.email, groups=tuple(sorted(reader.groups))))
    assert held == reader.principals()
    assert may_read(document, held) == reference_may_read(document, reader)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.frozensets(st.sampled_from(PRINCIPALS), max_size=3), min_size=1, max_size=6), readers)
def test_the_catalog_filters_exactly_like_may_read(documents: list[frozenset[str]], reader: Reader) -> None:
    """The index's permission filter (engineer B's catalog) agrees with the rule of access."""
    with tempfile.TemporaryDirectory() as folder:
        catalog = SqliteCatalog(Path(folder) / "catalog.sqlite3")
        try:
            with catalog.transaction() as writer:
                for principals in documents:
                    writer.register_acl(principals)
            readable = set(catalog.readable_acls(reader.principals()))
        finally:
            catalog.close()
    for principals in documents:
        assert (acl_key(principals) in readable) == reference_may_read(principals, reader)
